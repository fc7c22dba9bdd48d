import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from abi_support import lib_path  # noqa: E402,F401  (fixture)
