"""What `keel versions register` reads besides the model file: training data and requirements.

The CLI runs in Keel's own environment, not the model's, so it never records its own packages
as the model's environment (that would make the security gate's "pinned environment" check pass
for any model); the environment comes from ``--environment`` (a requirements file) or the
``--metadata`` file. The signature comes from ``--training-data`` (its columns, with ``--target``
and ``--protected``), never from loading the model file: loading a pickle runs code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from keel.errors import InvalidInput
from keel.schemas import EnvironmentSpec

if TYPE_CHECKING:
    import pandas as pd

# name==version, name===version, or name @ url (pinned by its URL); extras and markers allowed.
_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(?P<spec>(===?|[<>~!]=?)[^;#\s]*"
    r"(\s*,\s*(===?|[<>~!]=?)[^;#\s,]*)*|@\s*\S+)?\s*(;.*)?$"
)


def read_training_data(path: Path) -> pd.DataFrame:
    """The training data file (Parquet, Arrow IPC or CSV) as a DataFrame."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            table = pq.read_table(path)
        elif suffix in (".arrow", ".feather", ".ipc", ".arrows"):
            try:
                table = ipc.open_file(path).read_all()
            except pa.ArrowInvalid:
                table = ipc.open_stream(path).read_all()
        elif suffix == ".csv":
            table = pacsv.read_csv(path)
        else:
            raise InvalidInput(
                f"--training-data: cannot tell the format of {path.name!r}; "
                "use a .parquet, .arrow or .csv file.",
                {"field": "--training-data"},
            )
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(
            f"--training-data: cannot read {path.name!r}: {exc}. "
            "Check that the file is complete and in the format its name says.",
            {"field": "--training-data"},
        ) from None
    frame: pd.DataFrame = table.to_pandas()
    return frame


def read_requirements(path: Path) -> EnvironmentSpec:
    """A requirements file (``pip freeze`` output, ``name==version`` per line) as the environment.

    Lines with other specifiers (``numpy>=1.26``) are kept as written, so the security gate can
    say which packages are not pinned. Comments, blank lines and pip options are skipped.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "requirements.txt"
    >>> _ = f.write_text("# pinned\\nscikit-learn==1.5.2\\nnumpy>=1.26  # loose\\n--index-url x\\n")
    >>> read_requirements(f).packages
    {'scikit-learn': '==1.5.2', 'numpy': '>=1.26'}
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"--environment: cannot read {str(path)!r} as a UTF-8 requirements file: {exc}.",
            {"field": "--environment"},
        ) from None
    packages: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        found = _REQUIREMENT.match(line)
        if found is None:
            raise InvalidInput(
                f"--environment: {path.name} line {number}: {raw.strip()!r} is not a requirement "
                "such as 'scikit-learn==1.5.2' (write `pip freeze > requirements.txt` in the "
                "model's environment).",
                {"field": "--environment", "line": number},
            )
        packages[found.group("name")] = (found.group("spec") or "").strip()
    return EnvironmentSpec(packages=packages)
