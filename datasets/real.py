"""Small real graphs shipped inside the package (with their licence notices).

>>> from ember.datasets import real_graph
>>> g = real_graph("kinships")
>>> g.train          # path to train.tsv.gz (head<TAB>relation<TAB>tail)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ember.errors import UserError

# name -> (folder under data/, trivial filtered-MRR floor from the data's README)
_GRAPHS = {
    "wordnet_k3": ("wordnet_k3", 0.011),
    "kinships": ("kinships", 0.110),
    "nations": ("nations", 0.550),
}


@dataclass(frozen=True)
class RealGraph:
    """A bundled graph: split files, sizes, and the trivial baseline to beat."""

    name: str
    folder: Path
    trivial_mrr: float

    @property
    def train(self) -> Path:
        return self.folder / "train.tsv.gz"

    @property
    def valid(self) -> Path:
        return self.folder / "valid.tsv.gz"

    @property
    def test(self) -> Path:
        return self.folder / "test.tsv.gz"

    @property
    def stats(self) -> dict:
        return json.loads((self.folder / "stats.json").read_text())

    def names(self) -> dict[str, tuple[str, str]]:
        """Entity id -> (readable name, gloss), for graphs that ship ``names.tsv.gz``."""
        path = self.folder / "names.tsv.gz"
        if not path.exists():
            return {}
        import pyarrow.csv as pacsv

        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types={"id": "string", "name": "string", "gloss": "string"}
            ),
        )
        ids, names, glosses = (table.column(c).to_pylist() for c in ("id", "name", "gloss"))
        return {i: (n, g or "") for i, n, g in zip(ids, names, glosses)}


def real_graph(name: str) -> RealGraph:
    """One of the bundled graphs: ``wordnet_k3``, ``kinships`` or ``nations``."""
    try:
        folder, floor = _GRAPHS[name]
    except KeyError:
        raise UserError(f"unknown bundled graph {name!r}; choose one of {sorted(_GRAPHS)}") from None
    root = Path(str(resources.files("ember.datasets"))) / "data" / folder
    return RealGraph(name, root, floor)


def real_graph_names() -> list[str]:
    return sorted(_GRAPHS)
