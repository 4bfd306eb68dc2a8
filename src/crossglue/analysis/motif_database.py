"""The default motif database: JASPAR CORE vertebrates as MEME, from the SQLite file inside
the pinned pyjaspar wheel (no download at run time), written at install (`make install`,
`crossglue motif-database`) and read by the pipeline (workflow/rules/analysis.smk).

Apart from :mod:`crossglue.analysis.motifs` (scanning) so that the CLI imports numpy only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crossglue.errors import CrossglueError

JASPAR_RELEASE = "JASPAR2024"
DEFAULT_DATABASE = Path("resources") / "motifs" / "JASPAR2024_CORE_vertebrates_non-redundant.meme"


def jaspar_meme(release: str = JASPAR_RELEASE, collection: str = "CORE", tax_group: str = "vertebrates") -> str:
    """JASPAR's latest version of every matrix of ``collection`` / ``tax_group`` as MEME v4
    text (probabilities = counts / column total, uniform background, as JASPAR's own MEME
    downloads), read from the SQLite file inside the pyjaspar wheel (no network)."""
    try:
        from pyjaspar import jaspardb
    except ImportError:
        raise CrossglueError(
            "the motif database is built from pyjaspar, which is not installed; run `make install` "
            "(or `pip install pyjaspar==4.0.0`)"
        ) from None
    import pyjaspar

    shipped = sorted(p.stem for p in (Path(pyjaspar.__file__).parent / "data").glob("JASPAR*.sqlite"))
    if release not in shipped:
        raise CrossglueError(f"JASPAR release {release} is not in the pyjaspar package (it has {', '.join(shipped)})")
    matrices = jaspardb(release=release).fetch_motifs(collection=collection, tax_group=[tax_group])
    if not matrices:
        raise CrossglueError(f"pyjaspar returned no {release} {collection} {tax_group} matrices")
    parts = ["MEME version 4\n\nALPHABET= ACGT\n\nstrands: + -\n\nBackground letter frequencies\n"]
    parts.append("A 0.25 C 0.25 G 0.25 T 0.25\n\n")
    for m in matrices:
        counts = np.array([m.counts[b] for b in "ACGT"], dtype=np.float64).T  # (width, 4)
        probs = counts / counts.sum(axis=1, keepdims=True)
        rows = "\n".join(" ".join(f"{v:.6f}" for v in row) for row in probs)
        nsites = int(round(counts[0].sum()))
        parts.append(
            f"MOTIF {m.matrix_id} {m.name}\n"
            f"letter-probability matrix: alength= 4 w= {len(probs)} nsites= {nsites} E= 0\n{rows}\n"
            f"URL http://jaspar.genereg.net/matrix/{m.matrix_id}\n\n"
        )
    return "".join(parts)


def write_motif_database(path: str | Path = DEFAULT_DATABASE, release: str = JASPAR_RELEASE) -> int:
    """Write JASPAR ``release`` CORE vertebrates as MEME to ``path`` (atomically); the number
    of motifs written."""
    from crossglue.io_utils import atomic_path

    text = jaspar_meme(release)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return text.count("\nMOTIF ")
