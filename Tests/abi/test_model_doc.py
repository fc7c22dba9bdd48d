"""docs/MODEL.md stays the document the code cites: every section a citation names exists, and everything the
document (and ARCHITECTURE.md's "Follow one token") names in the repository exists.

Citations: a file that mentions docs/MODEL.md cites its sections as "§N" or "§N.M" (a bare "§3.2" in such a file
means that document too). The model document must be cited by its path in the repository, so that no citation
points at a copy outside it."""
import pathlib
import re

from abi_support import ROOT

DOC = ROOT / "docs" / "MODEL.md"
CITING_DIRS = ["Sources", "Tests", "tools"]
CITING_FILES = ["ARCHITECTURE.md"]
TEXT_SUFFIXES = {".swift", ".py", ".c", ".h", ".md", ".sh", ".txt"}
SKIP_DIRS = {"Fixtures", ".build", "__pycache__"}

SECTION = re.compile(r"§(\d+(?:\.\d+)*)")
DOC_NAME = re.compile(r"MODEL\.md")
DOC_PATH = re.compile(r"docs/MODEL\.md")
# "MODEL.md 3.9" or "MODEL.md section 3": a citation that does not use the § form.
UNMARKED = re.compile(r"MODEL\.md,?\s+(?:section\s+|sections\s+)?\d")


def doc_sections():
    return {m.group(1) for m in re.finditer(r"^#{2,6}\s+(\d+(?:\.\d+)*)\.?\s", DOC.read_text(), flags=re.M)}


def citing_files():
    this = pathlib.Path(__file__).resolve()     # its examples of wrong citations are meant
    for name in CITING_DIRS:
        for path in sorted((ROOT / name).rglob("*")):
            if (path.is_file() and path.suffix in TEXT_SUFFIXES and not SKIP_DIRS & set(path.parts)
                    and path.resolve() != this):
                yield path
    for name in CITING_FILES:
        yield ROOT / name


def test_every_citation_names_an_existing_section():
    sections = doc_sections()
    assert {"1.1", "2", "3", "3.3", "3.9", "4", "5", "6"} <= sections, sorted(sections)
    problems, cited = [], 0
    for path in citing_files():
        text = path.read_text(errors="replace")
        if not DOC_NAME.search(text):
            continue
        where = path.relative_to(ROOT)
        for m in DOC_NAME.finditer(text):
            if text[max(0, m.start() - 5):m.start()] != "docs/":
                line = text.count("\n", 0, m.start()) + 1
                problems.append(f"{where}:{line}: cites MODEL.md without its path docs/MODEL.md")
        for m in UNMARKED.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            problems.append(f"{where}:{line}: write the section as §N.M: {m.group(0)!r}")
        if not DOC_PATH.search(text):
            continue
        for m in SECTION.finditer(text):
            cited += 1
            if m.group(1) not in sections:
                line = text.count("\n", 0, m.start()) + 1
                problems.append(f"{where}:{line}: §{m.group(1)} is not a section of docs/MODEL.md")
    assert not problems, "\n".join(problems)
    assert cited >= 16, f"only {cited} citations found: is the search still looking in the right places?"


# What the documents name: backquoted repository paths, bare source file names, Swift test functions as
# `SuiteTests.function`, pytest functions as `path.py::test_name`, and library members as `Type.member`.
PATH = re.compile(r"`((?:Sources|Tests|tools|bindings|include|docs|examples)/[^`*\s:]*)`")
FILE = re.compile(r"`(\w+\.(?:swift|py|c|h))`")
SWIFT_TEST = re.compile(r"`([A-Z]\w*Tests)\.(\w+)`")
PY_TEST = re.compile(r"`([\w/.-]+\.py)::(\w+)`")
MEMBER = re.compile(r"`([A-Z]\w+)\.(?!(?:swift|py|c|h|md|json)`)([a-z]\w*)`")


def named_things_missing(text):
    swift_sources = {p: p.read_text() for p in (ROOT / "Sources").rglob("*.swift")}
    swift_tests = {p: p.read_text() for p in (ROOT / "Tests").rglob("*.swift")}
    file_names = {p.name for d in ["Sources", "Tests", "tools", "bindings"] for p in (ROOT / d).rglob("*")}
    missing = []
    for m in PATH.finditer(text):
        if not (ROOT / m.group(1)).exists():
            missing.append(f"path {m.group(1)}")
    for m in FILE.finditer(text):
        if m.group(1) not in file_names:
            missing.append(f"file {m.group(1)}")
    for m in SWIFT_TEST.finditer(text):
        suite, function = m.groups()
        if not any(re.search(rf"\bstruct {suite}\b", s) and re.search(rf"\bfunc {function}\(", s)
                   for s in swift_tests.values()):
            missing.append(f"Swift test {suite}.{function}")
    for m in PY_TEST.finditer(text):
        path, function = m.groups()
        file = ROOT / path
        if not file.exists() or not re.search(rf"^def {function}\(", file.read_text(), flags=re.M):
            missing.append(f"pytest {path}::{function}")
    for m in MEMBER.finditer(text):
        type_name, member = m.groups()
        if type_name.endswith("Tests"):
            continue
        declared = any(re.search(rf"\b(?:class|struct|enum|protocol|extension) {type_name}\b", s)
                       for s in swift_sources.values())
        has_member = any(re.search(rf"\b(?:func|var|let|case) {member}\b", s) for s in swift_sources.values())
        if not (declared and has_member):
            missing.append(f"Swift member {type_name}.{member}")
    return missing


def test_the_model_document_names_what_exists():
    missing = named_things_missing(DOC.read_text())
    assert not missing, "docs/MODEL.md names things that do not exist:\n" + "\n".join(missing)


def test_follow_one_token_names_what_exists():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    start = text.find("## Follow one token")
    assert start >= 0, "ARCHITECTURE.md has no 'Follow one token' section"
    end = text.find("\n## ", start + 1)
    missing = named_things_missing(text[start:end if end >= 0 else len(text)])
    assert not missing, "ARCHITECTURE.md 'Follow one token' names things that do not exist:\n" + "\n".join(missing)


def test_the_checks_notice_what_is_wrong():
    assert named_things_missing("`Tests/abi/no_such_file.py` `NoSuchFile.swift` `ForwardPassTests.noSuchTest`"
                                " `Session.noSuchMember` `Tests/abi/test_model_doc.py::test_no_such_test`") == [
        "path Tests/abi/no_such_file.py", "file NoSuchFile.swift", "Swift test ForwardPassTests.noSuchTest",
        "pytest Tests/abi/test_model_doc.py::test_no_such_test", "Swift member Session.noSuchMember"]
    assert named_things_missing("`Forward.swift` `ForwardPassTests.cachedDecodeEqualsOnePrefill` `Session.evaluate`"
                                " `Tests/abi/test_model_doc.py::test_the_checks_notice_what_is_wrong`") == []
    assert UNMARKED.search("see MODEL.md 3.9") and UNMARKED.search("MODEL.md section 3")
    assert not UNMARKED.search("docs/MODEL.md §3.9")
