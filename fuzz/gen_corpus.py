#!/usr/bin/env python3
"""Writes the seed corpus of the `parse` fuzz target to corpus/parse/.

Seeds are indicator-like values of every kind, every way they are defanged or wrapped, and
near misses for every error reason. Files are named by the SHA-1 of their content, as libFuzzer
names what it finds, so re-running this only adds files. Inputs that once broke the parser
(found by the fuzzer or the property tests) are added by hand, named `regression-…` after the
bug, and must never be removed.

Run from the fuzz/ directory: python3 gen_corpus.py
"""

import hashlib
import os

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

BASES = [
    # hashes
    MD5, MD5.upper(), SHA1, SHA1.upper(), SHA256, SHA256.upper(),
    "sha256:" + SHA256, "SHA-256:" + SHA256.upper(), "md5:" + MD5, "sha1:" + SHA1,
    "sha-1:" + SHA1, "md5:" + SHA256, MD5[:-1], MD5 + "0", SHA1[:-1], SHA256 + "ab",
    MD5[:-1] + "g", SHA256[:10] + "-" + SHA256[11:], "deadbeefdeadbeef", "sha256:xyz",
    "sha256:", "md5:" + MD5[:5],
    # IPv4
    "1.2.3.4", "0.0.0.0", "255.255.255.255", "10.0.0.300", "010.1.1.1", "1.2.3.04",
    "1.2.3", "1.2.3.4.5", "1..2.3", "1.2.3.", ".1.2.3", "1.2.3.4:80", "256.1.1.1",
    "1.2.3.4a", "4294967295", "0x7f.0.0.1",
    # IPv6
    "2001:db8::1", "2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8:0:0:1:0:0:1",
    "::1", "::", "::ffff:1.2.3.4", "::FFFF:102:304", "::1.2.3.4", "fe80::1%1",
    "fe80::1%eth0", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::1", "2001:db8::g",
    "::ffff:1.2.3.300", "[2001:db8::1]", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4",
    ":::", "1:", ":1",
    # CIDR
    "10.1.2.3/8", "192.168.1.77/24", "0.0.0.0/0", "1.2.3.4/0", "1.2.3.4/31", "1.2.3.4/32",
    "1.2.3.4/032", "10.9.8.7/255.255.0.0", "10.0.0.0/255.0.255.0", "10.0.0.0/33",
    "10.0.0.0/1000", "10.0.0.0/", "10.0.0.256/8", "2001:db8::1/32", "[2001:db8::1]/48",
    "2001:db8::1/128", "2001:db8::/129", "::/0", "::ffff:10.1.2.3/104",
    "::ffff:10.1.2.3/96", "::ffff:1.2.3.4/128", "::ffff:0:0/95", "1.2.3.4/8/8",
    "1.2.3.4/-1",
    # domains
    "example.com", "Example.COM", "example.com.", "bücher.example", "BÜCHER.Example",
    "XN--BCHER-KVA.example", "例え.テスト", "例え。テスト", "ＥＸＡＭＰＬＥ.com",
    "_dmarc.example.com", "a_b.example.com", "r3---sn-4g5e6nez.googlevideo.com",
    "user.github.io", "example.co.uk", "evil.unknowntld", "1.2.3.4.example",
    "xn--a.example", "xn--.example", "example.co_m", "-bad.example.com", "bad-.example.com",
    "a..example.com", "exa mple.com", "exa%mple.com", "com", "COM.", "co.uk", "github.io",
    "中国", "xn--fiqs8s", "example.123", "*.example.com", ".example.com", "localhost",
    "hello world", "straße.de", "faß.de", "a.ck", "www.ck", "a" * 63 + ".com",
    "a" * 64 + ".com", ".".join(["a" * 63] * 4) + ".com", "a.b", "a-.b", "a.-b",
    "ǅ.example", "\u200d.example", "ﬁ.example", "①.example",
    # e-mail
    "User.Name+tag@Example.COM", "mailto:a@example.com", "MAILTO:a@example.com?subject=hi",
    "a@bücher.example", "jürgen@example.com", "a@example.com.", "a@com", "a@co.uk",
    "a@localhost", "@example.com", "a..b@example.com", ".a@example.com", "a b@example.com",
    '"a"@example.com', "a@[1.2.3.4]", "a@*.example.com", "a@.example.com", "a@",
    "a@b@example.com", "a" * 65 + "@example.com", "mailto:", "mailto://a@example.com",
    "'o'@example.com", "{x}@example.com",
    # URLs
    "HTTP://Example.COM", "http://example.com:80/", "https://example.com:443/a",
    "ftp://example.com:21/x", "https://example.com:80/", "http://example.com:8080",
    "http://example.com:08080/", "http://example.com:/", "http://example.com/Path/To?Q=A#frag",
    "http://example.com?", "http://example.com#top", "http://user:pass@evil.example/",
    "http://bank.example@evil.example/login", "http://evil.example\\@good.example/",
    "http://bücher.example/ä b", "http://example.com/%7euser", "http://example.com/a%zz%4",
    "http://example.com/a b|c", "http://example.com/a\tb\r\n",
    "http://example.com/q?a=b&c=d/e?f", "http://example.com/?a[]=1\\",
    "http://example.com/./a/../b", "http://1.2.3.4/x", "http://[2001:DB8::1]:8080/",
    "http://[::ffff:1.2.3.4]/", "http://github.io/", "http://example.com./",
    "tcp://1.2.3.4:4444", "WSS://Example.com:443/s", "http://010.1.1.1/",
    "http://2130706433/", "http://1.2.3.300/", "http://example.com:99999/",
    "http://example.com:abc/", "http://2001:db8::1/", "http://[2001:db8::1/",
    "http://[2001:db8::1]x/", "http:///x", "http://localhost/", "http://*.example.com/",
    "http://exa mple.com/", "http://[fe80::1%25eth0]/", "http://example.com/(dot)",
    "http://example.com/%5B.%5D", "mailto://example.com/", "sha256://example.com/",
    "a.b://example.com/", "http://example.com/" + "a" * 4100, "http://ex%61mple.com/",
    "http:example.com", "http:/example.com", "javascript:alert(1)",
    # scheme-less URLs
    "evil.example/path", "evil.example:8080/x", "evil.example:8080", "evil.example:443",
    "evil.example?q=1", "evil.example#x", "//evil.example/x", "1.2.3.4:8080", "1.2.3.4/abc",
    "user@evil.example/x", "evil.example:abc", "evil.example/", "[::1]:8080/x",
    # anything
    "", " ", "[]", '""', "xyzzy", "\u00a0", "\ufeff", "<>", "((()))", "[[.]]", "[.]",
    "(at)", "hxxp", "hxxp:", "[dot]", "\x00", "\x7f", "\U0010ffff",
]

DEFANGS = [
    lambda v: v.replace(".", "[.]"),
    lambda v: v.replace(".", "(.)"),
    lambda v: v.replace(".", "{.}"),
    lambda v: v.replace(".", "[dot]"),
    lambda v: v.replace(".", "(DOT)"),
    lambda v: v.replace("@", "[at]"),
    lambda v: v.replace("@", "[@]"),
    lambda v: v.replace("@", "(at)"),
    lambda v: v.replace("://", "[://]"),
    lambda v: v.replace(":", "[:]"),
    lambda v: v.replace("http", "hxxp"),
    lambda v: v.replace("http", "hXXp").replace(".", "[.]"),
    lambda v: v.replace("ftp", "fxp"),
    lambda v: "<" + v + ">",
    lambda v: '"' + v + '"',
    lambda v: "'" + v + "'",
    lambda v: "[" + v + "]",
    lambda v: "(" + v + ")",
    lambda v: "  " + v + "\t\n",
    lambda v: "\u201c" + v + "\u201d",
]


def seeds():
    out = []
    for base in BASES:
        out.append(base)
    # Each defang applied to every base it changes, so every style meets every kind.
    for i, defang in enumerate(DEFANGS):
        for j, base in enumerate(BASES):
            variant = defang(base)
            if variant != base and (i + j) % 10 == 0:
                out.append(variant)
    return out


def main():
    target = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "parse")
    os.makedirs(target, exist_ok=True)
    written = 0
    for seed in seeds():
        data = seed.encode("utf-8")
        name = hashlib.sha1(data).hexdigest()
        path = os.path.join(target, name)
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
            written += 1
    print(f"{written} new seed files in {target}")


if __name__ == "__main__":
    main()
