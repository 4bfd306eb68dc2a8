"""Cell-type labels become file names in peak calling: safe, readable, never colliding."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from test_fragments import write_fragments

from crossglue.peaks.calling import (
    PeakParams,
    call_species_peaks,
    group_file_names,
    safe_group_name,
    write_pseudobulk_insertions,
)

NASTY = [
    "InN/PVALB",
    "InN_PVALB",
    "L2/3 IT",
    "..",
    "",
    " ",
    "Müller glia",
    "日本",
    "../../etc/passwd",
    "Astro",
    "astro",
    "x-0123456789",
    "-rf",
    "a" * 80,
    "a" * 81,
]


def test_plain_labels_keep_their_name():
    assert [safe_group_name(g) for g in ("Astro", "InN_PVALB", "cluster3", "other", "L4-IT")] == [
        "Astro",
        "InN_PVALB",
        "cluster3",
        "other",
        "L4-IT",
    ]


def test_other_labels_get_a_readable_slug_and_a_stable_hash():
    assert safe_group_name("InN/PVALB") == "InN_PVALB-a283804628"
    assert safe_group_name("L2/3 IT") == "L2_3_IT-5136fe147e"
    assert safe_group_name("Müller glia") == "Muller_glia-7159a9ae75"
    assert safe_group_name("..") == "group-5ec1f7e700"
    assert safe_group_name("") == "group-e3b0c44298"
    # a plain label shaped like a hashed name is hashed too, so it can never equal one
    assert safe_group_name("x-0123456789") == "x_0123456789-a3fc88ed89"


def test_nasty_labels_map_to_distinct_safe_names_even_ignoring_case():
    names = group_file_names(NASTY)
    assert set(names) == set(NASTY)
    assert len({n.casefold() for n in names.values()}) == len(NASTY)
    for name in names.values():
        assert name and name.isascii() and "/" not in name and not name.startswith((".", "-"))
        assert len(name) <= 60
    assert names["InN_PVALB"] == "InN_PVALB" and names["InN/PVALB"] == "InN_PVALB-a283804628"
    assert names["Astro"].startswith("Astro-") and names["astro"].startswith("astro-")  # macOS file systems
    assert group_file_names(reversed(NASTY)) == names  # the order of the cells does not matter


def test_pseudobulk_of_nasty_labels_writes_one_file_each_inside_the_folder(tmp_path):
    frags = pd.DataFrame(
        {
            "chrom": "1",
            "start": [10 * i for i in range(len(NASTY))],
            "end": [10 * i + 5 for i in range(len(NASTY))],
            "barcode": [f"B{i:02d}-1" for i in range(len(NASTY))],
            "count": 1,
        }
    )
    path = write_fragments(tmp_path / "f.tsv.gz", frags.to_csv(sep="\t", header=False, index=False))
    groups = pd.Series(NASTY, index=[f"s#B{i:02d}-1" for i in range(len(NASTY))])
    outdir = tmp_path / "pb"
    beds = write_pseudobulk_insertions({"s": path}, groups, {"1": "chr1"}, {"chr1": 1000}, outdir)
    assert set(beds) == set(NASTY)
    assert sorted(p.name for p in outdir.iterdir()) == sorted(p.name for p in beds.values())
    for i, label in enumerate(NASTY):
        bed = pd.read_csv(beds[label], sep="\t", header=None)
        assert sorted(bed[1]) == [10 * i, 10 * i + 4], label  # this label's cell, nobody else's


@pytest.mark.skipif(shutil.which("macs2") is None, reason="macs2 not on PATH")
def test_macs2_calls_each_nasty_group_separately(shared_data, tmp_path):
    frag = shared_data / "singlecell" / "archr_pbsmall" / "PBSmall.tsv.gz"
    barcodes = pd.read_csv(frag, sep="\t", header=None, comment="#", usecols=[3])[3].unique()
    rename = {"B": "InN/PVALB", "M": "InN_PVALB", "T": "../Müller glia"}
    groups = pd.Series([rename[b[0]] for b in barcodes], index=[f"pb#{b}" for b in barcodes])
    sizes = {"chr5": 180_915_260, "chr11": 135_006_516}
    _, summits = call_species_peaks("human", {"pb": frag}, groups, {}, sizes, tmp_path / "w", PeakParams())
    assert set(summits["group"]) == set(rename.values())
    assert summits.groupby("group").size().min() > 100  # each group its own calls, not a shared file
    assert not (tmp_path / "Müller glia_peaks.narrowPeak").exists() and set(tmp_path.iterdir()) == {tmp_path / "w"}
