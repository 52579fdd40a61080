//! The parser's invariants as one check, shared by the fuzz target, the corpus replay test and
//! the property tests, so that all three hold the parser to exactly the same promises.

use crate::{Indicator, Kind};

use super::{ParseError, ParseOptions, Parsed, UrlSchemePolicy, parse};

/// Every URL scheme policy, so each invariant is checked under all of them.
const POLICIES: [UrlSchemePolicy; 4] = [
    UrlSchemePolicy::Http,
    UrlSchemePolicy::Https,
    UrlSchemePolicy::Both,
    UrlSchemePolicy::Reject,
];

/// Checks the parser's promises on `raw`, under every URL scheme policy:
///
/// - no panic (the caller sees one);
/// - detection agrees with declaration: if `parse(raw, None)` gives indicators of kind `k`,
///   `parse(raw, Some(k))` gives the same result;
/// - idempotence: every indicator that any parse of `raw` returns (detected or under any
///   declared kind) parses back to itself, detected and declared;
/// - every error has a reason from [`ParseError::REASONS`] and a non-empty message.
///
/// # Errors
/// A description of the first broken promise.
#[doc(hidden)]
pub fn check_invariants(raw: &str) -> Result<(), String> {
    for policy in POLICIES {
        let options = ParseOptions { url_scheme: policy };
        match parse(raw, None, &options) {
            Ok(detected) => {
                for indicator in detected.iter() {
                    let declared = parse(raw, Some(indicator.kind), &options);
                    if declared.as_ref() != Ok(&detected) {
                        return Err(format!(
                            "{raw:?} under {policy:?}: detected {detected:?}, but declared {} \
                             gives {declared:?}",
                            indicator.kind
                        ));
                    }
                    check_fixed_point(raw, indicator, &options)?;
                }
            }
            Err(e) => check_error(raw, &e)?,
        }
        for kind in Kind::ALL {
            match parse(raw, Some(kind), &options) {
                Ok(parsed) => {
                    for indicator in parsed.iter() {
                        check_fixed_point(raw, indicator, &options)?;
                    }
                }
                Err(e) => check_error(raw, &e)?,
            }
        }
    }
    Ok(())
}

/// Checks that `indicator`, parsed from `raw`, is canonical: parsing its value, detected or as
/// its kind, gives it back alone.
fn check_fixed_point(
    raw: &str,
    indicator: &Indicator,
    options: &ParseOptions,
) -> Result<(), String> {
    let want = Ok(Parsed::One(indicator.clone()));
    let detected = parse(&indicator.value, None, options);
    if detected != want {
        return Err(format!(
            "{raw:?} gave {indicator}, but detecting its value gives {detected:?}"
        ));
    }
    let declared = parse(&indicator.value, Some(indicator.kind), options);
    if declared != want {
        return Err(format!(
            "{raw:?} gave {indicator}, but parsing its value as {} gives {declared:?}",
            indicator.kind
        ));
    }
    Ok(())
}

/// Checks that an error names a known reason and says something.
fn check_error(raw: &str, e: &ParseError) -> Result<(), String> {
    if !ParseError::REASONS.contains(&e.reason()) {
        return Err(format!("{raw:?}: reason {:?} is not listed", e.reason()));
    }
    if e.to_string().is_empty() {
        return Err(format!("{raw:?}: error {e:?} has an empty message"));
    }
    Ok(())
}
