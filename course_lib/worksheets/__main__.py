"""``python -m course_lib.worksheets [NN ...]``: regenerate exercises/ and solutions/ from the sources."""
import sys
import time

from . import write

if __name__ == "__main__":
    start = time.perf_counter()
    for path in write(sys.argv[1:] or None):
        print("wrote", path.relative_to(path.parents[1]))
    print(f"done in {time.perf_counter() - start:.0f} s")
