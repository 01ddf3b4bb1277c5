"""Schema linking for the offline planner: question words to tables, columns and known values.

Column names are split into words (snake case, camel case, dots) and compared with question words
after a light singularisation, through a small general vocabulary of synonyms and through
prefix abbreviations (`temp` for `temperature`). Column descriptions contribute enumerated values
("one of a, b, c"), words that make a column empty ("empty while the ticket is still open"), and
weak context words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from analyst_service.planning.compounds import glued_from, whole_of
from analyst_service.planning.lexicon import broader, synonyms
from analyst_service.planning.participles import opposite_participles
from analyst_service.planning.vocabulary import SYNONYMS, WEAK_WORDS, abbreviates, stem
from csv_analyst.v1 import dataset_pb2

STOPWORDS = frozenset(
    "a an the of in on at to for from by per with and or is are was were be been being what which who "
    "whom how many much do does did has have had there their our my your me i we you it its this that "
    "these those show list give get find tell please all any each every than as still currently "
    "so far ever only just also some one ones value values".split()
)

_NO_SINGULAR = {"series", "species", "news", "status", "analysis", "bus", "gas", "sales"}
NUMERIC_PREFIXES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                    "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL")
TEMPORAL_PREFIXES = ("DATE", "TIMESTAMP")
# A minus sign is part of a number only where it cannot be a hyphen ("below -10", not "4-cylinder" or "2010-2012").
_TOKEN = re.compile(r"\d{4}-\d{2}-\d{2}|(?:(?<![\w.)])-(?=\d))?\d+(?:\.\d+)?|q[1-4]\b|[a-z]+")


def singular(word: str) -> str:
    """Return a light singular form of a lower-case English word ("categories" -> "category")."""
    if len(word) <= 3 or word in _NO_SINGULAR or not word.endswith("s"):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if word.endswith(("ss", "us", "is")):
        return word
    return word[:-1]


def name_words(name: str) -> list[str]:
    """Split an identifier into lower-case singular words (snake case, camel case, dots, spaces)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [singular(w) for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def tokenize(question: str) -> list[str]:
    """Lower-case word and number tokens; thousands separators and currency signs are removed."""
    text = question.lower().replace("’", "'").replace("−", "-")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = re.sub(r"[$€£]", "", text)
    text = text.replace("%", " percent ")
    return _TOKEN.findall(text)


@dataclass(frozen=True)
class ColumnInfo:
    """One column of the dataset with what the planner derives from its name and description."""

    table: str
    name: str
    type: str
    words: tuple[str, ...]
    description_words: frozenset[str]
    values: tuple[str, ...]
    null_states: frozenset[str]
    top_values: tuple[str, ...] = ()
    distinct_count: int = 0
    null_count: int = 0
    row_count: int = 0
    min_value: str = ""
    max_value: str = ""
    numeric_text: bool = False
    number_range: tuple[float, float] | None = None
    description_head: str = ""

    @property
    def year_like(self) -> bool:
        """True for a numeric (or numbers-as-text) column whose values all read as years (1000-2100)."""
        return self.number_range is not None and 1000 <= self.number_range[0] and self.number_range[1] <= 2100 \
            and all(float(v).is_integer() for v in self.number_range)

    @property
    def year_text(self) -> bool:
        """True for a text column of dates or periods written out ("10 August 1975", "1995–96", "May 2009").

        Nearly every known cell holds a four-digit year and the column does not read as plain numbers,
        so year phrases compare its first year (`as_year`).
        """
        if not self.is_text or self.numeric_text:
            return False
        cells = [v for v in self.top_values if v.strip().lower() not in _PLACEHOLDERS]
        return len(cells) >= 2 and sum(bool(_YEAR_IN_TEXT.search(v)) for v in cells) >= 0.8 * len(cells)

    @property
    def is_flag(self) -> bool:
        """True for an integer 0/1 column ("inmetro"), which reads like a boolean."""
        return self.is_native_numeric and self.number_range == (0.0, 1.0) and self.distinct_count <= 2

    @property
    def all_values_known(self) -> bool:
        """True when the profile's top values are every distinct value of the column."""
        return bool(self.top_values) and len(self.top_values) < 50 and self.distinct_count <= len(self.top_values) + 2

    @property
    def is_text(self) -> bool:
        """True for VARCHAR columns."""
        return self.type.upper().startswith("VARCHAR")

    @property
    def ref(self) -> tuple[str, str]:
        """The (table, column) pair."""
        return (self.table, self.name)

    @property
    def is_native_numeric(self) -> bool:
        """True for integer and floating types."""
        return self.type.upper().startswith(NUMERIC_PREFIXES)

    @property
    def is_numeric(self) -> bool:
        """True for integer and floating types, and for text columns whose cells are numbers ("1,234")."""
        return self.is_native_numeric or self.numeric_text

    @property
    def is_temporal(self) -> bool:
        """True for DATE and TIMESTAMP columns."""
        return self.type.upper().startswith(TEMPORAL_PREFIXES)

    @property
    def is_boolean(self) -> bool:
        """True for BOOLEAN columns."""
        return self.type.upper() == "BOOLEAN"

    @property
    def is_id(self) -> bool:
        """True for identifier columns (`id`, `*_id`, `*Id`)."""
        return bool(self.words) and self.words[-1] in ("id", "key", "code")

    @property
    def is_measure(self) -> bool:
        """True for numeric columns that are not identifiers."""
        return self.is_numeric and not self.is_id


@dataclass(frozen=True)
class Mention:
    """A span of question tokens linked to columns (candidates in several tables) or a table."""

    start: int
    end: int
    columns: tuple[ColumnInfo, ...] = ()
    table: str = ""

    @property
    def column(self) -> ColumnInfo | None:
        """The first candidate column, or None for a table mention."""
        return self.columns[0] if self.columns else None


@dataclass
class SchemaIndex:
    """Columns, tables and values of one dataset, ready for linking."""

    dataset: dataset_pb2.Dataset
    columns: list[ColumnInfo] = field(default_factory=list)
    table_words: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, dataset: dataset_pb2.Dataset) -> SchemaIndex:
        """Index every table and column of the dataset."""
        index = cls(dataset)
        for table in dataset.tables:
            index.table_words[table.name] = tuple(name_words(table.name))
            for column in table.columns:
                index.columns.append(ColumnInfo(
                    table=table.name, name=column.name, type=column.type.upper(),
                    words=tuple(name_words(column.name)),
                    description_words=frozenset(singular(w) for w in tokenize(column.description)) - STOPWORDS,
                    values=_enumerated_values(column.description),
                    null_states=_null_states(column.description),
                    top_values=tuple(column.profile.top_values) if not column.type.upper().startswith("BOOL") else (),
                    distinct_count=column.profile.distinct_count, null_count=column.profile.null_count,
                    row_count=table.row_count, min_value=column.profile.min_value,
                    max_value=column.profile.max_value,
                    numeric_text=_numeric_text(column),
                    number_range=_number_range(column),
                    description_head=_description_head(column.description),
                ))
        return index

    def table_columns(self, table: str) -> list[ColumnInfo]:
        """Columns of one table in file order."""
        return [c for c in self.columns if c.table == table]

    def id_column(self, table: str) -> ColumnInfo | None:
        """The identifier column of a table: `<table>_id`, `id`, or the first id-like column."""
        columns = self.table_columns(table)
        own = [c for c in columns if c.is_id and c.words[:-1] == self.table_words[table]]
        return (own or [c for c in columns if c.is_id] or columns[:1] or [None])[0]

    def table_for_word(self, word: str) -> str:
        """The table whose (singular) name is this single word, or ""."""
        for table, words in self.table_words.items():
            if (singular(word),) == words or word == "".join(words):
                return table
        return ""

    def link_span(self, words: list[str]) -> tuple[ColumnInfo, ...]:
        """Columns that the whole word span names, best first (ties kept: same name in two tables)."""
        scored: list[tuple[float, int, ColumnInfo]] = []
        for position, column in enumerate(self.columns):
            score = _span_score(words, column, self.table_words[column.table])
            if score > 0:
                scored.append((score, position, column))
        if not scored:
            return ()
        best = max(s for s, _, _ in scored)
        return tuple(c for s, _, c in sorted(scored, key=lambda t: (-t[0], t[1])) if s >= best - 1e-9)


def word_match(word: str, column_word: str) -> float:
    """How well a singular question word matches one column-name word (0 when not at all)."""
    if word == column_word:
        return 1.0
    if column_word in SYNONYMS.get(word, ()):
        return 0.8
    if len(column_word) >= 3 and any(synonym == column_word or synonym.startswith(column_word)
                                     or abbreviates(column_word, synonym) for synonym in synonyms(word)):
        return 0.75  # "hottest" -> temperature -> temp
    if len(column_word) >= 4 and column_word in broader(word):
        return 0.6
    if len(column_word) >= 3 and len(word) > len(column_word) and word.startswith(column_word):
        return 0.7
    if len(word) >= 4 and column_word.startswith(word):
        return 0.7
    if abbreviates(column_word, word):
        return 0.65
    if whole_of(word, column_word):
        return 0.7  # "revenue" -> revtotal
    if len(word) >= 5 and stem(word) == stem(column_word) and len(stem(word)) >= 4 \
            and not opposite_participles(word, column_word):
        return 0.7
    for synonym in SYNONYMS.get(word, ()):
        if len(synonym) >= 3 and len(column_word) > len(synonym) + 2 and synonym in column_word:
            return 0.6 if column_word.endswith(synonym) else 0.55
    if len(word) >= 5 and len(column_word) >= len(word) + 2 and word in column_word:
        # Concatenated names ("percbelowpoverty"): English compounds are head-final, so prefer the end.
        return 0.65 if column_word.endswith(word) else 0.6
    return 0.0


def _span_score(words: list[str], column: ColumnInfo, table_words: tuple[str, ...]) -> float:
    core = list(words)
    while len(core) > 2 and core[-1] in WEAK_WORDS:
        core.pop()  # "graduation rate", "consumption level": a trailing qualifier
    glued = (tuple(words), tuple(core), tuple(reversed(core)) if len(core) == 2 else ())
    if any(glued_from(span, column.name) for span in glued if span):  # "total population" -> poptotal
        return len(words) + 0.5
    total, strong, covered = 0.0, False, set()
    for word in words:
        best = 0.0
        for column_word in column.words:
            score = word_match(word, column_word)
            if score > best:
                best = score
            if score >= 0.55:
                covered.add(column_word)
        if best < 0.6 and word == column.description_head:
            best = 0.6  # "city" for a column described as "City of the sensor"
        if best >= 0.55:
            strong = True
        elif word in table_words:
            best = 0.3
        elif word in column.description_words:
            best = 0.25
        elif word in WEAK_WORDS and len(words) > 1:
            best = 0.1
        else:
            return 0.0
        total += best
    if not strong:
        return 0.0
    return total + 0.5 * len(covered) / len(column.words)


# A cell that reads as a number: optional sign or currency, digits with separators, an optional unit or
# footnote after it. Dates ("10 August 2007") and clock times ("2:28:17") do not count.
_NUMBER_CELL = re.compile(r"^\s*[-+−~≈$€£]?\s*\d[\d,]*(\.\d+)?\s*(%|[a-z]{0,12}\.?|\(.*\)|\[.*\])?\s*$",
                          flags=re.IGNORECASE)
_MONTH_WORD = re.compile(r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b", flags=re.IGNORECASE)
_PLACEHOLDERS = frozenset({"", "-", "–", "—", "−", "n/a", "na", "none", "?", "tbd", "tba", "unknown", "n.a.", "--", "----"})
_YEAR_IN_TEXT = re.compile(r"(?<![0-9])(1[0-9]{3}|20[0-9]{2})(?![0-9])")
_FIRST_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _number_cells(column: dataset_pb2.Column) -> list[float] | None:
    """The numbers of a text column's known cells, or None unless nearly all of them read as numbers."""
    if not column.type.upper().startswith("VARCHAR") or not column.profile.top_values:
        return None
    cells = [v for v in column.profile.top_values if v.strip().lower() not in _PLACEHOLDERS]
    numbers = []
    for cell in cells:
        if _NUMBER_CELL.match(cell) and not _MONTH_WORD.search(cell):
            match = _FIRST_NUMBER.search(cell.replace(",", ""))
            if match:
                numbers.append(float(match.group(0)))
    if len(cells) < 2 or len(numbers) < 0.8 * len(cells):
        return None
    return numbers


def _numeric_text(column: dataset_pb2.Column) -> bool:
    return _number_cells(column) is not None


def _number_range(column: dataset_pb2.Column) -> tuple[float, float] | None:
    if column.type.upper().startswith(NUMERIC_PREFIXES):
        try:
            return float(column.profile.min_value), float(column.profile.max_value)
        except ValueError:
            return None
    numbers = _number_cells(column)
    return (min(numbers), max(numbers)) if numbers else None


def _description_head(description: str) -> str:
    """The noun a column description opens with ("City of the sensor: ..." -> city), singular, or ""."""
    words = tokenize(description)[:2]
    if len(words) < 2 or words[1] not in ("of", "in", "where", "when", "that", "which"):
        return ""
    return singular(words[0]) if words[0] not in STOPWORDS else ""


def _enumerated_values(description: str) -> tuple[str, ...]:
    """Values listed as `one of a, b, c` (or `a, b or c`) in a column description."""
    match = re.search(r"\bone of:?\s+([^.;()]+)", description, flags=re.IGNORECASE)
    if not match:
        return ()
    parts = re.split(r",\s*|\s+or\s+", match.group(1).strip())
    return tuple(p.strip().strip("'\"`") for p in parts if p.strip())


def _null_states(description: str) -> frozenset[str]:
    """The words that make a column empty: "empty while the ticket is still open" -> open;
    "empty for guest checkouts" -> guest, checkout (the kind of row and the word that qualifies it)."""
    match = re.search(r"\b(?:empty|null|blank|missing)\b[^.;]*?\b(while|when|if|until|for)\b([^.;]*)",
                      description, flags=re.IGNORECASE)
    if not match:
        return frozenset()
    words = [singular(w) for w in tokenize(match.group(2)) if w not in STOPWORDS]
    return frozenset(words[-2:] if match.group(1).lower() == "for" else words[-1:])
