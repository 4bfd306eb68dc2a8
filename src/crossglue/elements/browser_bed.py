"""BED files a genome browser opens: lifted peaks, unlifted peaks, union elements per species.

Every BED written here is BED6 (chrom, start, end, name, score, strand) with an integer score
in [0, 1000] and a strand in ``+ - .``, so UCSC, IGV and bedtools read it as BED. Anything that
is not a BED field (lift status, reasons) lives in the TSV beside it, keyed by the name column.
Unlifted peaks are in UCSC liftOver's own unmapped format: a ``#reason`` comment line
(``#Deleted in new``, ``#Partially deleted in new``, ``#Split in new``, or a recipe check's
reason) before each BED4 record in source coordinates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from crossglue.elements.recipes import PASS
from crossglue.io_utils import atomic_path


def _bed6(chrom, start, end, name) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "chrom": np.asarray(chrom).astype(str),
            "start": np.asarray(start).astype(np.int64),
            "end": np.asarray(end).astype(np.int64),
            "name": np.asarray(name).astype(str),
            "score": 0,
            "strand": ".",
        }
    )


def write_bed(table: pd.DataFrame, path: str | Path) -> None:
    """A BED table without header or index, whole file or nothing."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, header=False)


def mapped_bed(lifted: pd.DataFrame) -> pd.DataFrame:
    """BED6 of every peak with a lifted interval (target coordinates), name = peak_id, sorted.

    ``lifted`` is :func:`crossglue.elements.recipes.lift_peaks`' table; each peak's status and
    reason are in that table (``{source}_to_{target}.tsv``), not in the BED.
    """
    mapped = lifted[lifted["lifted_chrom"].notna()]
    table = _bed6(mapped["lifted_chrom"], mapped["lifted_start"], mapped["lifted_end"], mapped["peak_id"])
    return table.sort_values(["chrom", "start", "end", "name"], kind="stable").reset_index(drop=True)


def unmapped_text(lifted: pd.DataFrame, peaks: pd.DataFrame) -> str:
    """UCSC liftOver's unmapped file: ``#reason`` then the BED4 record (source coordinates) per failed peak."""
    failed = lifted.loc[lifted["status"] != PASS, ["peak_id", "status", "reason"]].merge(
        peaks[["peak_id", "chrom", "start", "end"]], on="peak_id", sort=False
    )
    if not len(failed):
        return ""
    reason = failed["reason"].astype(object).fillna(failed["status"])
    reason = reason.astype(str).str.replace(r"[\t\r\n]+", " ", regex=True)
    record = (
        failed["chrom"].astype(str)
        + "\t"
        + failed["start"].astype(np.int64).astype(str)
        + "\t"
        + failed["end"].astype(np.int64).astype(str)
        + "\t"
        + failed["peak_id"].astype(str)
    )
    return ("#" + reason + "\n" + record).str.cat(sep="\n") + "\n"


def write_unmapped(lifted: pd.DataFrame, peaks: pd.DataFrame, path: str | Path) -> None:
    """:func:`unmapped_text` written atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(unmapped_text(lifted, peaks))


def union_bed(union: pd.DataFrame, species: str, chrom_order: list[str]) -> pd.DataFrame:
    """BED6 of the union elements present in ``species``, name ``{element_id}|{class}``, genome order.

    ``union`` is :func:`crossglue.elements.union.build_union`'s table; ``chrom_order`` the
    species' chromosomes in chrom-sizes order (unknown ones sort last, by name).
    """
    present = union[f"{species}_chrom"].notna().to_numpy()
    table = _bed6(
        union[f"{species}_chrom"].to_numpy()[present],
        union[f"{species}_start"].to_numpy()[present],
        union[f"{species}_end"].to_numpy()[present],
        (union["element_id"].astype(str) + "|" + union["class"].astype(str)).to_numpy()[present],
    )
    rank = pd.Series(range(len(chrom_order)), index=pd.Index(chrom_order)).reindex(table["chrom"]).to_numpy()
    table["_rank"] = np.where(np.isnan(rank), len(chrom_order), rank)
    table = table.sort_values(["_rank", "chrom", "start", "end", "name"], kind="stable")
    return table.drop(columns="_rank").reset_index(drop=True)
