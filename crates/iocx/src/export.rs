//! `iocx export`: stream indicators to stdout in constant memory.

use std::io::{BufWriter, ErrorKind, Write};
use std::process::ExitCode;

use anyhow::Context as _;
use iocx_model::Kind;
use iocx_model::feed::{ExportFormat, ExportRow, ExportWriter};
use iocx_store::{ExportFilter, IndicatorDetail, StoreError};

use crate::common::Global;

/// `iocx export` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The output format.
    #[arg(long, default_value = "txt", value_name = "txt|csv|json|stix")]
    pub format: ExportFormat,
    /// Only this kind (repeatable).
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<Kind>,
    /// Only indicators reported by this source (repeatable).
    #[arg(long = "source", value_name = "NAME")]
    pub sources: Vec<String>,
    /// Only active indicators (neither expired nor aged out).
    #[arg(long)]
    pub active_only: bool,
}

/// Converts a stored indicator to what the writers take.
pub fn export_row(d: &IndicatorDetail) -> ExportRow<'_> {
    d.export_row()
}

/// Runs `iocx export`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let filter = ExportFilter {
        kinds: args.kinds,
        sources: args.sources,
        active_at: args.active_only.then(iocx_model::Timestamp::now),
    };
    let stdout = std::io::stdout().lock();
    let mut writer = ExportWriter::new(BufWriter::with_capacity(1 << 20, stdout), args.format)?;
    let with_observations = !matches!(args.format, ExportFormat::Txt);
    let mut closed = false;
    let result = store.export(&filter, with_observations, &mut |chunk| {
        for d in &chunk {
            if let Err(e) = writer.row(&export_row(d)) {
                if e.kind() == ErrorKind::BrokenPipe {
                    closed = true;
                    return Ok(false);
                }
                return Err(StoreError::Io {
                    path: "stdout".into(),
                    source: e,
                });
            }
        }
        Ok(true)
    });
    result.context("exporting")?;
    if !closed {
        match writer.finish() {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::BrokenPipe => {}
            Err(e) => return Err(e).context("writing the export"),
        }
    }
    let _ = std::io::stderr().flush();
    Ok(ExitCode::SUCCESS)
}
