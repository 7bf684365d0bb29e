"""A model version's signature: the columns it reads and writes, with their types and roles."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from keel.errors import InvalidInput


class ColumnRole(StrEnum):
    FEATURE = "feature"
    PREDICTION = "prediction"
    SCORE = "score"
    TARGET = "target"
    PROTECTED_ATTRIBUTE = "protected_attribute"
    ID = "id"
    TIMESTAMP = "timestamp"


class ColumnType(StrEnum):
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    STRING = "string"
    CATEGORICAL = "categorical"
    DATETIME = "datetime"


@dataclass(frozen=True)
class Column:
    name: str
    dtype: ColumnType
    role: ColumnRole = ColumnRole.FEATURE
    nullable: bool = True


@dataclass(frozen=True)
class Signature:
    columns: tuple[Column, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for index, column in enumerate(self.columns):
            if not column.name.strip():
                raise InvalidInput(
                    f"signature.columns[{index}].name must not be empty.",
                    {"field": f"signature.columns[{index}].name"},
                )
            if column.name in seen:
                raise InvalidInput(
                    f"signature.columns names {column.name!r} twice; names must be unique.",
                    {"field": "signature.columns", "column": column.name},
                )
            seen.add(column.name)

    def with_role(self, role: ColumnRole) -> tuple[Column, ...]:
        """The columns that play ``role``, in signature order.

        >>> sig = Signature((Column("age", ColumnType.INTEGER), Column("y", ColumnType.BOOLEAN,
        ...                  ColumnRole.TARGET)))
        >>> [c.name for c in sig.with_role(ColumnRole.FEATURE)]
        ['age']
        """
        return tuple(c for c in self.columns if c.role == role)

    @property
    def features(self) -> tuple[Column, ...]:
        return self.with_role(ColumnRole.FEATURE)
