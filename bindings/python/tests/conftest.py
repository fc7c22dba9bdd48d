import pathlib
import sys

# Tests run against the source tree's package (which finds build/lib/libglm.so) unless glm is installed.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
