# Regenerates python_title.json, the reference outputs TestTitlePython checks
# against: python3 testdata/gen_python_title.py > testdata/python_title.json
import json, re, sys, unicodedata

inputs = [
    "", "a", "A", "k8s-x", "k8s-cluster", "v2beta", "AppV2", "my-app", "hello_world",
    "AWS-secrets", "x--y", "__x", "postgres.default", "café", "4b3d9f0a",
    "modules.api.externals.db", "HELLO WORLD", "hello   world", "they're bill's",
    "a1b2c3", "1abc", "ABC123def", "\tab\ncd", "a\u00a0b", "a\u2003b", "a\x1cb", "a\x85b",
    "ǆemal", "ǅEMAL", "ǄEMAL", "straße", "ßa", "ﬁsh", "ŉa", "İstanbul", "aİ", "ΣΑΣ",
    "ΑΣ ΑΣ", "αΣ'", "ὐa", "ᾳa", "ΆΣ.Σ", "éa-ÉB", "ÿ", "Ǳ", "日本語 abc", "ⓐⓑ",
    "ɐa", "ʰa", "a\u0301b", "𐐨𐐨 𐐀", "üBER-ärger", "x\u200by",
]
out = []
for s in inputs:
    out.append({
        "in": s,
        "title": s.title(),
        "clean": re.sub(r"[^A-Za-z0-9\s]", " ", s).title(),
    })
json.dump({"python": sys.version.split()[0], "unicode": unicodedata.unidata_version, "cases": out},
          sys.stdout, ensure_ascii=True, indent=1)
sys.stdout.write("\n")
