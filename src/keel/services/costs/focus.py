"""Read a FOCUS 1.0-1.2 billing export (CSV or Parquet) with DuckDB: check it, then sum it.

DuckDB scans the file in vectorised, bounded-memory passes; no row goes through Python. The
first pass looks for any bad row; only when there is one does a second pass number the rows to
name it. The bill is then summed per (day, model tag, team tag, pool, charge category), which is
all allocation needs, so a month costs the same to allocate whatever the bill's size.

What is refused, naming the row (1 = the first data row; 0 = the header) and the column:

* a column Keel needs missing (`keel.domain.costs.REQUIRED_COLUMNS`);
* a column FOCUS does not define without the ``x_`` prefix the specification reserves;
* a ChargeCategory other than Usage, Purchase, Tax, Credit, Adjustment;
* a datetime that is not UTC (FOCUS: ISO 8601 with ``Z``; ``+00:00`` is accepted too);
* a cost that is not a number, a currency other than the server's, Tags that are not a JSON
  object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from keel.domain.costs import (
    CHARGE_CATEGORIES,
    DATETIME_COLUMNS,
    FOCUS_COLUMNS,
    MICROS,
    REQUIRED_COLUMNS,
)
from keel.errors import InvalidInput

FILE_FORMATS = ("csv", "parquet")
_UTC_DATETIME = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+]00:?00)$"
_TAG_KEY = re.compile(r"[A-Za-z0-9_.:/=+@ -]{1,128}")
_MEMORY_LIMIT = "256MB"


@dataclass(frozen=True)
class CostLine:
    day: date
    model: str | None
    team: str | None
    pool: str
    charge_category: str
    effective_micros: int
    billed_micros: int
    rows: int


@dataclass(frozen=True)
class FocusBill:
    rows: int
    lines: list[CostLine]

    @property
    def effective_micros(self) -> int:
        return sum(line.effective_micros for line in self.lines)


def check_tag_key(key: str, field_name: str) -> str:
    if not isinstance(key, str) or not _TAG_KEY.fullmatch(key):
        raise InvalidInput(
            f"The '{field_name}' field must be a tag key of 1-128 letters, digits or _.:/=+@- "
            f"(e.g. keel-model). Got {key!r} instead.",
            {"field": field_name},
        )
    return key


def _q(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _refuse(row: int, column: str, problem: str, value: Any = None) -> InvalidInput:
    where = "the header" if row == 0 else f"row {row}"
    shown = "" if value is None else f" Got {str(value)[:80]!r}."
    return InvalidInput(
        f"The FOCUS file is refused at {where}, column {column!r}: {problem}.{shown} "
        "Nothing was imported; fix the file and import it again.",
        {"row": row, "column": column, "field": column},
    )


def _source(path: Path, file_format: str) -> str:
    literal = "'" + str(path).replace("'", "''") + "'"
    if file_format == "csv":
        # All text: a bad number or time is ours to report by row, not DuckDB's sniffer's.
        return f"read_csv({literal}, header=true, all_varchar=true, auto_detect=true)"
    return f"read_parquet({literal})"


def _checks(types: dict[str, str], currency: str) -> list[tuple[str, str, str]]:
    """(column, SQL that is true on a bad row, what is wrong) in the order they are reported."""
    categories = ", ".join(f"'{c}'" for c in CHARGE_CATEGORIES)
    checks = [
        (
            "ChargeCategory",
            f"ChargeCategory IS NULL OR ChargeCategory NOT IN ({categories})",
            f"ChargeCategory must be one of {', '.join(CHARGE_CATEGORIES)}",
        )
    ]
    for column in ("EffectiveCost", "BilledCost"):
        checks.append(
            (
                column,
                f"TRY_CAST({_q(column)} AS DECIMAL(38, 10)) IS NULL",
                f"{column} must be a decimal number",
            )
        )
    for column in DATETIME_COLUMNS:
        if types[column].startswith("TIMESTAMP"):
            bad = f"{_q(column)} IS NULL"  # a typed Parquet timestamp is an instant already
        else:
            bad = (
                f"{_q(column)} IS NULL OR NOT regexp_matches({_q(column)}, '{_UTC_DATETIME}') "
                f"OR TRY_CAST(left({_q(column)}, 10) AS DATE) IS NULL"
            )
        checks.append((column, bad, "datetimes must be UTC in ISO 8601, e.g. 2026-11-01T00:00:00Z"))
    checks.append(
        (
            "BillingCurrency",
            f"BillingCurrency IS DISTINCT FROM '{currency}'",
            f"this Keel keeps costs in {currency}; every row's BillingCurrency must be {currency}",
        )
    )
    if "Tags" in types and types["Tags"] in ("VARCHAR", "JSON"):
        checks.append(
            (
                "Tags",
                "Tags IS NOT NULL AND Tags <> '' AND (NOT json_valid(Tags) "
                "OR json_type(Tags) <> 'OBJECT')",
                'Tags must be a JSON object, e.g. {"keel-model": "churn"}',
            )
        )
    return checks


def _tag(types: dict[str, str], key: str) -> str:
    if "Tags" not in types:
        return "NULL"
    if types["Tags"].startswith("MAP"):
        return f"NULLIF(CAST(element_at(Tags, '{key}')[1] AS VARCHAR), '')"
    path = '$."' + key + '"'
    return f"NULLIF(json_extract_string(NULLIF(Tags, ''), '{path}'), '')"


def read_focus(
    path: Path,
    file_format: str,
    *,
    model_tag: str,
    team_tag: str,
    pool_tag: str,
    currency: str,
) -> FocusBill:
    """Check the FOCUS file at ``path`` and sum it per day, tag and pool (see module docs)."""
    if file_format not in FILE_FORMATS:
        raise InvalidInput(
            f"The 'format' field must be csv or parquet. Got {file_format!r} instead.",
            {"field": "format"},
        )
    for key, name in ((model_tag, "model_tag"), (team_tag, "team_tag"), (pool_tag, "pool_tag")):
        check_tag_key(key, name)
    with duckdb.connect(":memory:") as con:
        con.execute(f"SET memory_limit = '{_MEMORY_LIMIT}'")
        con.execute("SET preserve_insertion_order = true")
        try:
            source = _source(path, file_format)  # the path is quoted as a literal
            con.execute(f"CREATE TEMP VIEW bill AS SELECT * FROM {source}")  # noqa: S608
            described = con.execute("DESCRIBE bill").fetchall()
        except duckdb.Error as exc:
            raise InvalidInput(
                f"The file could not be read as {file_format.upper()}: {str(exc)[:300]}",
                {"field": "file", "row": 0},
            ) from None
        types = {str(r[0]): str(r[1]) for r in described}
        for column in REQUIRED_COLUMNS:
            if column not in types:
                raise _refuse(0, column, "this FOCUS column is mandatory and missing")
        for column in types:
            if column not in FOCUS_COLUMNS and not column.startswith("x_"):
                raise _refuse(
                    0, column, f"a custom column must be prefixed x_ (rename it x_{column})"
                )
        checks = _checks(types, currency)
        any_bad = " OR ".join(f"({sql})" for _, sql, _ in checks)
        try:
            bad = con.execute(f"SELECT 1 FROM bill WHERE {any_bad} LIMIT 1").fetchone()  # noqa: S608
            if bad is not None:
                raise _first_bad(con, checks, any_bad)
            result = con.execute(_summing_sql(types, model_tag, team_tag, pool_tag)).fetchall()
            total_rows = con.execute("SELECT count(*) FROM bill").fetchone()
        except duckdb.Error as exc:
            raise InvalidInput(
                f"The FOCUS file could not be read: {str(exc)[:300]}", {"field": "file"}
            ) from None
    lines = [
        CostLine(
            day=r[0],
            model=r[1],
            team=r[2],
            pool=r[3] or "",
            charge_category=r[4],
            effective_micros=int(r[5]),
            billed_micros=int(r[6]),
            rows=int(r[7]),
        )
        for r in result
    ]
    return FocusBill(rows=int(total_rows[0]) if total_rows else 0, lines=lines)


def _first_bad(
    con: duckdb.DuckDBPyConnection, checks: list[tuple[str, str, str]], any_bad: str
) -> InvalidInput:
    cases = " ".join(f"WHEN {sql} THEN {i}" for i, (_, sql, _) in enumerate(checks))
    values = ", ".join(f"CAST({_q(column)} AS VARCHAR)" for column, _, _ in checks)
    found = con.execute(
        f"SELECT n, CASE {cases} END, [{values}] FROM "  # noqa: S608 - our own column names
        f"(SELECT row_number() OVER () AS n, * FROM bill) WHERE {any_bad} ORDER BY n LIMIT 1"
    ).fetchone()
    assert found is not None
    row, index, shown = int(found[0]), int(found[1]), found[2]
    column, _, problem = checks[index]
    return _refuse(row, column, problem, shown[index])


def _summing_sql(types: dict[str, str], model_tag: str, team_tag: str, pool_tag: str) -> str:
    model, team, pool = _tag(types, model_tag), _tag(types, team_tag), _tag(types, pool_tag)
    day = "CAST(left(CAST(ChargePeriodStart AS VARCHAR), 10) AS DATE)"
    # Exact decimal sums per group, rounded once to micro-units (half-even, like Decimal).
    effective = f"round_even(sum(CAST(EffectiveCost AS DECIMAL(38, 10))) * {MICROS}, 0)"
    billed = f"round_even(sum(CAST(BilledCost AS DECIMAL(38, 10))) * {MICROS}, 0)"
    return f"""
        SELECT {day} AS day, {model} AS model, {team} AS team,
               coalesce({pool}, ServiceName, '') AS pool, ChargeCategory,
               CAST({effective} AS HUGEINT), CAST({billed} AS HUGEINT), count(*)
        FROM bill
        GROUP BY ALL
        ORDER BY ALL
    """  # noqa: S608 - column names are ours; tag keys are checked by check_tag_key
