"""How JSON may spell one character inside a string literal (shared by the grammar tests' references)."""

SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def char_spellings(ch):
    """Every spelling libglm may write for `ch`, sorted: raw (when JSON allows it), its short escape, or \\u with
    hex digits in either case (characters of the Basic Multilingual Plane)."""
    forms = set()
    if ord(ch) >= 0x20 and ch not in '"\\':
        forms.add(ch)
    if ch in SHORT_ESCAPES:
        forms.add(SHORT_ESCAPES[ch])
    if ord(ch) < 0x10000:
        forms.update({"\\u%04x" % ord(ch), "\\u%04X" % ord(ch)})
    return sorted(forms)
