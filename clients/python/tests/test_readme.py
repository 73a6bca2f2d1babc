"""The README's example runs unchanged against the platform."""

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_example_runs(platform, tmp_path):
    example = re.search(r"## Example\n\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    script = tmp_path / "example.py"
    script.write_text(example)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180, env=os.environ)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0].split()
    assert (
        uuid.UUID(first[0]).version == 4 and first[1] in ("assigned", "unassigned", "in_progress") and first[-1] == "km"
    )
    assert "job_not_found" in done.stdout
