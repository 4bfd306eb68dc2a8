"""Union elements: liftOver recipes, re-centring, classes, N species, and truth on the simulator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossglue.elements.recipes import PASS, RECIPES, LiftRecipe, lift_peaks, recipe_from_config
from crossglue.elements.union import build_union, class_summary
from crossglue.errors import CrossglueError
from crossglue.genomics.chain import chains_from_blocks

SIZE = 20_000
# Aligned blocks (a_start, b_start, size) between species "ape" (chrA) and "bat" (chrB), + strand:
# a 1 kb deletion in bat after ape 5000, a segmental duplication of ape 12000-13000 in bat, and a
# 1 kb insertion in bat inside ape 14000-15000; bat 17000-20000 has no ape orthologue.
BLOCKS = [
    (1, 0, 0, 5_000),
    (1, 6_000, 5_000, 4_000),
    (2, 12_000, 10_000, 1_000),
    (3, 12_000, 15_000, 1_000),
    (4, 14_000, 12_000, 500),
    (4, 14_500, 13_500, 500),
]


def _chains(blocks, t_name, q_name, swap=False):
    rows = [(c, b, a, s) if swap else (c, a, b, s) for c, a, b, s in blocks]
    table = pd.DataFrame(rows, columns=["chain_id", "t_start", "q_start", "size"]).assign(
        t_name=t_name, q_name=q_name, q_strand="+"
    )
    table = table.sort_values(["chain_id", "t_start"]).reset_index(drop=True)
    return chains_from_blocks(table, {t_name: SIZE}, {q_name: SIZE})


def _peaks(species, chrom, summits):
    summits = np.asarray(summits)
    return pd.DataFrame(
        {
            "peak_id": [f"{species}_p{i}" for i in range(1, len(summits) + 1)],
            "chrom": chrom,
            "start": summits - 250,
            "end": summits + 251,
            "summit": summits,
            "score": 1.0,
        }
    )


@pytest.fixture
def two_species():
    ape_to_bat = _chains(BLOCKS, "chrA", "chrB")
    bat_to_ape = _chains(BLOCKS, "chrB", "chrA", swap=True)
    # ape: conserved, ape-only on aligned sequence, deleted in bat, duplicated, stretched, half deleted
    ape = _peaks("ape", "chrA", [1_000, 3_000, 5_500, 12_500, 14_500, 4_850])
    # bat: conserved (100 bp off), bat-only on aligned sequence (ape 8000), bat-specific sequence
    bat = _peaks("bat", "chrB", [1_100, 7_000, 18_000])
    return ape, bat, ape_to_bat, bat_to_ape


def _union(two_species, recipe: LiftRecipe):
    ape, bat, ab, ba = two_species
    lifts = {
        ("ape", "bat"): lift_peaks(ape, ab, ba, recipe, {"chrB": SIZE}),
        ("bat", "ape"): lift_peaks(bat, ba, ab, recipe, {"chrA": SIZE}),
    }
    return build_union({"ape": ape, "bat": bat}, lifts, {"ape": ["chrA"], "bat": ["chrB"]}), lifts


def _by_peak(union, species):
    return union.set_index(f"{species}_peak")


def test_caglayan_recipe_classes_every_kind_of_element(two_species):
    union, lifts = _union(two_species, RECIPES["caglayan"])
    ape = _by_peak(union[union["ape_peak"].notna()], "ape")
    assert ape.loc["ape_p1", "class"] == "conserved" and ape.loc["ape_p1", "bat_peak"] == "bat_p1"
    assert ape.loc["ape_p2", "class"] == "ape_accessible"
    assert ape.loc["ape_p3", "class"] == "ape_sequence" and ape.loc["ape_p3", "unmapped_reason"] == "Deleted in new"
    assert ape.loc["ape_p4", "class"] == "ambiguous"  # two copies in bat: multi-mapper dropped
    assert ape.loc["ape_p5", "class"] == "ambiguous"  # lifted length 1501 / 501 > 2
    assert "length" in ape.loc["ape_p5", "unmapped_reason"]
    assert ape.loc["ape_p6", "class"] == "ape_accessible"  # 0.8 of it aligns: passes minMatch 0.5
    bat = _by_peak(union[union["bat_peak"].notna() & union["ape_peak"].isna()], "bat")
    assert bat.loc["bat_p2", "class"] == "bat_accessible"
    assert bat.loc["bat_p3", "class"] == "bat_sequence"
    assert len(union) == 8  # 6 ape + 3 bat peaks, one pair merged
    assert union["element_id"].tolist() == [f"el{i:07d}" for i in range(1, 9)]
    assert (union["class_ape_bat"] == union["class"]).all()
    # sequence and ambiguous elements exist only in their own species
    lonely = union["class"].isin(["ape_sequence", "bat_sequence", "ambiguous"])
    assert union.loc[lonely & union["ape_peak"].notna(), "bat_chrom"].isna().all()
    assert union.loc[~lonely, ["ape_chrom", "bat_chrom"]].notna().all().all()
    assert (
        union.loc[union["class"].isin(["conserved", "ape_accessible", "bat_accessible"]), "unmapped_reason"]
        .isna()
        .all()
    )


def test_lifted_elements_are_recentred_on_the_lifted_summit(two_species):
    union, _ = _union(two_species, RECIPES["caglayan"])
    ape = _by_peak(union[union["ape_peak"].notna()], "ape")
    # ape 3000 -> bat 3000 (first block); ape 4850 -> bat 4850; bat 7000 -> ape 8000
    assert ape.loc["ape_p2", ["bat_start", "bat_end"]].tolist() == [2_750, 3_251]
    assert ape.loc["ape_p6", ["bat_start", "bat_end"]].tolist() == [4_600, 5_101]
    bat = _by_peak(union[union["bat_peak"].notna()], "bat")
    assert bat.loc["bat_p2", ["ape_chrom", "ape_start", "ape_end"]].tolist() == ["chrA", 7_750, 8_251]
    # the conserved element keeps both called peaks' own coordinates
    assert bat.loc["bat_p1", ["ape_start", "bat_start"]].tolist() == [750, 850]


def test_yuan_recipe_needs_095_of_the_peak_aligned(two_species):
    union, lifts = _union(two_species, RECIPES["yuan"])
    ape = _by_peak(union[union["ape_peak"].notna()], "ape")
    assert ape.loc["ape_p6", "class"] == "ape_sequence"  # only 0.8 aligned
    assert lifts[("ape", "bat")].set_index("peak_id").loc["ape_p6", "reason_code"] == "partially_deleted"
    assert ape.loc["ape_p4", "class"] == "ambiguous"  # duplicated in new
    assert ape.loc["ape_p5", "class"] == "ape_accessible"  # no length check in this recipe
    assert ape.loc["ape_p1", "class"] == "conserved"


def test_reciprocal_check_rejects_peaks_that_do_not_lift_back(two_species):
    ape, bat, ab, _ = two_species
    # a return chain that sends bat 0-5000 somewhere else entirely
    elsewhere = _chains([(1, 0, 15_000, 5_000)], "chrB", "chrA", swap=False)
    lifted = lift_peaks(ape.iloc[:2], ab, elsewhere, RECIPES["caglayan"]).set_index("peak_id")
    assert (lifted["status"] == "ambiguous").all()
    assert (lifted["reason_code"] == "reciprocal").all()
    loose = lift_peaks(ape.iloc[:2], ab, elsewhere, LiftRecipe(min_reciprocal_overlap=None))
    assert (loose["status"] == PASS).all()


def test_three_species_get_a_class_per_pair(two_species):
    ape, bat, ab, ba = two_species
    # cat: same genome as bat (identity chains to bat, bat's chains to ape); peak only at bat_p1
    ident = _chains([(1, 0, 0, SIZE)], "chrB", "chrC")
    ident_back = _chains([(1, 0, 0, SIZE)], "chrC", "chrB")
    ape_cat = _chains(BLOCKS, "chrA", "chrC")
    cat_ape = _chains(BLOCKS, "chrC", "chrA", swap=True)
    cat = _peaks("cat", "chrC", [1_050])
    recipe = RECIPES["caglayan"]
    chains = {
        ("ape", "bat"): (ab, ba),
        ("bat", "ape"): (ba, ab),
        ("bat", "cat"): (ident, ident_back),
        ("cat", "bat"): (ident_back, ident),
        ("ape", "cat"): (ape_cat, cat_ape),
        ("cat", "ape"): (cat_ape, ape_cat),
    }
    peaks = {"ape": ape, "bat": bat, "cat": cat}
    chrom = {"ape": "chrA", "bat": "chrB", "cat": "chrC"}
    lifts = {(a, b): lift_peaks(peaks[a], to, back, recipe, {chrom[b]: SIZE}) for (a, b), (to, back) in chains.items()}
    union = build_union(peaks, lifts, {s: [c] for s, c in chrom.items()})
    assert len(union) == 8  # cat_p1 joins the ape_p1 / bat_p1 element
    assert {"class_ape_bat", "class_ape_cat", "class_bat_cat"} <= set(union.columns)
    first = union.set_index("ape_peak").loc["ape_p1"]
    assert first[["class", "class_ape_bat", "class_ape_cat", "class_bat_cat", "cat_peak"]].tolist() == [
        "conserved",
        "conserved",
        "conserved",
        "conserved",
        "cat_p1",
    ]
    bat_only = union.set_index("bat_peak").loc["bat_p2"]
    assert bat_only[["class", "class_ape_bat", "class_bat_cat"]].tolist() == ["bat_accessible"] * 3
    assert pd.isna(bat_only["class_ape_cat"])  # called in neither ape nor cat
    assert bat_only["cat_start"] == 6_750 and bat_only["ape_start"] == 7_750
    summary = class_summary(union, ["ape", "bat", "cat"])
    assert set(zip(summary["species_a"], summary["species_b"])) == {("ape", "bat"), ("ape", "cat"), ("bat", "cat")}
    assert summary.groupby(["species_a", "species_b"])["n_elements"].sum().eq(len(union)).all()


def test_recipe_config_errors_name_the_key():
    assert recipe_from_config({"recipe": "yuan"}).min_match == 0.95
    assert recipe_from_config({"min_match": 0.6}) == LiftRecipe(min_match=0.6)
    with pytest.raises(
        CrossglueError, match=r"config key 'liftover.recipe': 'ucsc' is not one of \['caglayan', 'yuan'\]"
    ):
        recipe_from_config({"recipe": "ucsc"})
    with pytest.raises(CrossglueError, match="config key 'liftover.minMatch' is not a known key"):
        recipe_from_config({"minMatch": 0.5})


# --- simulator truth ----------------------------------------------------------------------------


def _called_truth(union: pd.DataFrame, truth: pd.DataFrame, species: list[str]) -> pd.DataFrame:
    """Pairs (element, truth CRE) where a called peak of the element overlaps the CRE in its species."""
    from crossglue.genomics.intervals import overlapping_elements

    parts = []
    for s in species:
        el = union[union[f"{s}_peak"].notna()]
        cres = truth[truth[f"{s}_chrom"].notna()]
        for chrom, sub in cres.groupby(f"{s}_chrom"):  # chromosomes
            sub = sub.sort_values(f"{s}_start")
            on = el[el[f"{s}_chrom"] == chrom]
            q, k = overlapping_elements(
                sub[f"{s}_start"].to_numpy(np.int64),
                sub[f"{s}_end"].to_numpy(np.int64),
                on[f"{s}_start"].to_numpy(np.int64),
                on[f"{s}_end"].to_numpy(np.int64),
            )
            parts.append(pd.DataFrame({"element_id": on["element_id"].to_numpy()[q], "cre": sub["cre"].to_numpy()[k]}))
    pairs = pd.concat(parts).drop_duplicates()
    return pairs.merge(union[["element_id", "class"]]).merge(truth[["cre", "class"]].rename(columns={"class": "truth"}))


def _simulated_union(out, preset: str, recipe: LiftRecipe):
    """Peaks called on a simulated dataset (true cell types as groups), lifted, merged, scored."""
    import shutil

    if shutil.which("macs2") is None:
        pytest.skip("macs2 not on PATH")
    from crossglue.genomics.chain import read_chains
    from crossglue.genomics.genome import read_aliases, read_chrom_sizes
    from crossglue.peaks.calling import call_species_peaks
    from crossglue.simulate import simulate

    simulate(out, preset=preset, seed=0)
    cells = pd.read_csv(out / "truth" / "cells.tsv", sep="\t")
    sheet = pd.read_csv(out / "samples.tsv", sep="\t")
    species = ["human", "macaque"]
    peaks, sizes, aliases = {}, {}, {}
    for s in species:
        sizes[s] = read_chrom_sizes(out / "genome" / f"{s}.chrom.sizes")
        aliases[s] = read_aliases(out / "genome" / f"{s}.chrom_aliases.tsv")
        good = cells[
            (cells["species"] == s) & cells["modality"].isin(["atac", "multiome"]) & (cells["quality"] == "cell")
        ]
        groups = pd.Series(good["cell_type"].to_numpy(), index=good["cell"].to_numpy())
        frags = {r.sample: r.fragments for r in sheet.itertuples() if r.species == s and isinstance(r.fragments, str)}
        peaks[s], _ = call_species_peaks(s, frags, groups, aliases[s], sizes[s], out / "macs2" / s)
    lifts = {}
    for a, b in (("human", "macaque"), ("macaque", "human")):
        to = read_chains(out / "chains" / f"{a}_to_{b}.over.chain.gz", aliases[a], aliases[b])
        back = read_chains(out / "chains" / f"{b}_to_{a}.over.chain.gz", aliases[b], aliases[a])
        lifts[(a, b)] = lift_peaks(peaks[a], to, back, recipe, sizes[b])
    union = build_union(peaks, lifts, {s: list(sizes[s]) for s in species})
    truth = pd.read_csv(out / "truth" / "cres.tsv", sep="\t")
    return union, _called_truth(union, truth, species)


def _precision_recall(scored: pd.DataFrame) -> tuple[float, float]:
    """Conserved precision among called elements, recall over truly conserved CREs that were called."""
    called_conserved = scored[scored["class"] == "conserved"]
    precision = (called_conserved["truth"] == "conserved").mean()
    per_cre = scored[scored["truth"] == "conserved"].groupby("cre")["class"]
    recall = per_cre.apply(lambda c: (c == "conserved").any()).mean()
    return precision, recall


@pytest.fixture(scope="module")
def tiny_union(tmp_path_factory):
    return _simulated_union(tmp_path_factory.mktemp("sim"), "tiny", RECIPES["caglayan"])


def test_conserved_elements_recover_the_simulated_truth(tiny_union):
    _, scored = tiny_union
    precision, recall = _precision_recall(scored)
    assert (scored["class"] == "conserved").sum() > 100
    assert precision >= 0.95, precision
    assert recall >= 0.9, recall


def test_lineage_specific_insertions_never_conserved(tiny_union):
    _, scored = tiny_union
    inserted = scored[scored["truth"].str.endswith("_sequence")]
    assert len(inserted) >= 5
    assert not (inserted["class"] == "conserved").any()
    assert (inserted["class"] == inserted["truth"]).all()


def test_species_accessible_elements_match_truth(tiny_union):
    _, scored = tiny_union
    acc = scored[scored["class"].str.endswith("_accessible")]
    assert (acc["class"] == acc["truth"]).mean() >= 0.9


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["caglayan", "yuan"])
def test_demo_scale_union_recovers_truth(tmp_path, recipe):
    _, scored = _simulated_union(tmp_path, "demo", RECIPES[recipe])
    precision, recall = _precision_recall(scored)
    assert precision >= 0.95, precision
    assert recall >= 0.9, recall
    inserted = scored[scored["truth"].str.endswith("_sequence")]
    assert len(inserted) >= 10 and not (inserted["class"] == "conserved").any()


def test_report_inputs_count_classes_reasons_and_widths(two_species, tmp_path):
    from types import SimpleNamespace

    from crossglue.elements.report import write_report_inputs

    union, lifts = _union(two_species, RECIPES["caglayan"])
    ape, bat, _, _ = two_species
    summits = {}
    for name, table in (("ape", ape), ("bat", bat)):
        summits[name] = tmp_path / f"{name}.summits.tsv"
        table.assign(macs_start=table["start"] + 50, macs_end=table["end"] - 50).to_csv(summits[name], sep="\t")
    out = SimpleNamespace(
        summary=tmp_path / "summary.tsv",
        reasons=tmp_path / "reasons.tsv",
        widths=tmp_path / "widths.tsv",
        plot_classes=tmp_path / "c.png",
        plot_reasons=tmp_path / "r.png",
        plot_widths=tmp_path / "w.png",
    )
    write_report_inputs(union, {"ape": ape, "bat": bat}, lifts, summits, ["ape", "bat"], out)
    summary = pd.read_csv(out.summary, sep="\t").set_index("class")["n_elements"]
    assert summary.to_dict() == {
        "ambiguous": 2,
        "ape_accessible": 2,
        "conserved": 1,
        "ape_sequence": 1,
        "bat_accessible": 1,
        "bat_sequence": 1,
    }
    reasons = pd.read_csv(out.reasons, sep="\t")
    ape_bat = reasons[reasons["source"] == "ape"].set_index("reason_code")["n_peaks"]
    assert ape_bat.to_dict() == {"lifted": 3, "deleted": 1, "multiple": 1, "length_ratio": 1}
    widths = pd.read_csv(out.widths, sep="\t").set_index(["what", "set"])
    assert widths.loc[("macs2_peak", "ape"), "median"] == 401
    assert widths.loc[("final_peak", "bat"), "n"] == 3
    for png in (out.plot_classes, out.plot_reasons, out.plot_widths):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lift_table_with_an_unknown_status_is_rejected(tmp_path, two_species):
    from crossglue.elements.recipes import read_lift_table

    ape, bat, ab, ba = two_species
    table = lift_peaks(ape, ab, ba)
    table.loc[2, "status"] = "maybe"
    path = tmp_path / "ape_to_bat.tsv"
    table.to_csv(path, sep="\t", index=False, na_rep="NA")
    with pytest.raises(CrossglueError, match=r"ape_to_bat.tsv:4: status 'maybe'; expected pass, ambiguous or unmapped"):
        read_lift_table(path)


# --- BED files for genome browsers ------------------------------------------------------------


def _check_bed6(path):
    """Every data line is BED6: int start < end, int score in [0, 1000], strand + - or .; bedtools reads it."""
    import subprocess

    lines = [x for x in path.read_text().splitlines() if x and not x.startswith("#")]
    assert lines, path
    for line in lines:
        chrom, start, end, name, score, strand = line.split("\t")  # exactly six columns
        assert chrom and name and " " not in name
        assert start.isdigit() and end.isdigit() and int(start) < int(end), line
        assert score.isdigit() and 0 <= int(score) <= 1000, line
        assert strand in ("+", "-", "."), line
    done = subprocess.run(["bedtools", "sort", "-i", str(path)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert len(done.stdout.splitlines()) == len(lines)
    pybedtools = pytest.importorskip("pybedtools")
    intervals = list(pybedtools.BedTool(str(path)))
    assert [i.file_type for i in intervals[:1]] == ["bed"]
    assert all(i.strand in "+-." and int(i.score) >= 0 for i in intervals)
    return lines


def test_lift_and_union_write_bed_files_browsers_accept(two_species, tmp_path):
    import shutil

    from workflow_runner import run_script  # the scripts run as Snakemake runs them

    from crossglue.genomics.chain import write_chains

    if not shutil.which("bedtools"):
        pytest.skip("bedtools not installed")
    ape, bat, ab, ba = two_species
    species = {"ape": (ape, "chrA"), "bat": (bat, "chrB")}
    for name, (peaks, chrom) in species.items():
        peaks.to_csv(tmp_path / f"{name}.peaks.tsv", sep="\t", index=False)
        peaks.to_csv(tmp_path / f"{name}.summits.tsv", sep="\t", index=False)
        (tmp_path / f"{name}.sizes").write_text(f"{chrom}\t{SIZE}\n")
    write_chains(ab, tmp_path / "ape_bat.chain")
    write_chains(ba, tmp_path / "bat_ape.chain")
    for a, b in (("ape", "bat"), ("bat", "ape")):
        run_script(
            "lift_peaks.py",
            input=dict(
                peaks=str(tmp_path / f"{a}.peaks.tsv"),
                chain_to=str(tmp_path / f"{a}_{b}.chain"),
                chain_back=str(tmp_path / f"{b}_{a}.chain"),
                source_sizes=str(tmp_path / f"{a}.sizes"),
                target_sizes=str(tmp_path / f"{b}.sizes"),
                source_aliases=[],
                target_aliases=[],
            ),
            output=_lift_outputs(tmp_path, f"{a}_to_{b}"),
            params={"liftover": {"recipe": "caglayan", "min_lifted_fraction": 0.05}, "chains": {}},
            log=[str(tmp_path / "lift.log")],
            wildcards={"source": a, "target": b},
        )
    mapped = _check_bed6(tmp_path / "ape_to_bat.mapped.bed")
    table = pd.read_csv(tmp_path / "ape_to_bat.tsv", sep="\t")
    assert sorted(x.split("\t")[3] for x in mapped) == sorted(table.loc[table["lifted_chrom"].notna(), "peak_id"])
    # UCSC liftOver's unmapped format: '#reason' line, then the source record (BED4)
    unmapped = (tmp_path / "ape_to_bat.unmapped.bed").read_text().splitlines()
    assert unmapped[0::2] == ["#" + r for r in table.loc[table["status"] != PASS, "reason"]]
    assert "#Deleted in new" in unmapped
    ape_p3 = ape.set_index("peak_id").loc["ape_p3"]
    assert unmapped[unmapped.index("#Deleted in new") + 1] == f"chrA\t{ape_p3['start']}\t{ape_p3['end']}\tape_p3"
    records = [x.split("\t") for x in unmapped[1::2]]
    assert all(len(r) == 4 and r[1].isdigit() and int(r[1]) < int(r[2]) for r in records)
    assert _runs_cleanly(["bedtools", "sort", "-i", str(tmp_path / "ape_to_bat.unmapped.bed")])

    beds = [str(tmp_path / f"union_elements.{s}.bed") for s in species]
    out = {k: str(tmp_path / f"{k}.out") for k in ("union", "summary", "reasons", "widths")}
    out.update({k: str(tmp_path / f"{k}.png") for k in ("plot_classes", "plot_reasons", "plot_widths")})
    run_script(
        "union_elements.py",
        input=dict(
            peaks=[str(tmp_path / f"{s}.peaks.tsv") for s in species],
            summits=[str(tmp_path / f"{s}.summits.tsv") for s in species],
            chrom_sizes=[str(tmp_path / f"{s}.sizes") for s in species],
            lifts=[str(tmp_path / "ape_to_bat.tsv"), str(tmp_path / "bat_to_ape.tsv")],
        ),
        output={**out, "beds": beds},
        params={"species": list(species), "pairs": [["ape", "bat"], ["bat", "ape"]]},
        log=[str(tmp_path / "union.log")],
    )
    union = pd.read_csv(out["union"], sep="\t")
    for s in species:
        lines = _check_bed6(tmp_path / f"union_elements.{s}.bed")
        present = union[union[f"{s}_chrom"].notna()]
        assert sorted(x.split("\t")[3] for x in lines) == sorted(present["element_id"] + "|" + present["class"])
        starts = [int(x.split("\t")[1]) for x in lines]
        assert starts == sorted(starts)  # genome order


def _lift_outputs(tmp_path, stem):
    return {
        "table": str(tmp_path / f"{stem}.tsv"),
        "mapped": str(tmp_path / f"{stem}.mapped.bed"),
        "unmapped": str(tmp_path / f"{stem}.unmapped.bed"),
    }


def _runs_cleanly(command) -> bool:
    import subprocess

    return subprocess.run(command, capture_output=True).returncode == 0


def test_peaks_of_one_species_only_are_elements_without_a_class(two_species, tmp_path):
    """The other species has RNA samples only: nothing is lifted, and no element is called
    conserved or specific (there is no species to compare with); the report inputs say so."""
    from types import SimpleNamespace

    from crossglue.elements.report import write_report_inputs

    ape = two_species[0]
    union = build_union({"ape": ape}, {}, {"ape": ["chrA"]})
    assert list(union.columns) == [
        "element_id",
        "class",
        "ape_chrom",
        "ape_start",
        "ape_end",
        "ape_peak",
        "unmapped_reason",
    ]
    assert sorted(union["ape_peak"]) == sorted(ape["peak_id"]) and union["class"].isna().all()
    assert union["ape_start"].is_monotonic_increasing
    ape.to_csv(tmp_path / "ape.summits.tsv", sep="\t")
    out = SimpleNamespace(**{k: tmp_path / f"{k}.out" for k in ("summary", "reasons", "widths")})
    for k in ("plot_classes", "plot_reasons", "plot_widths"):
        setattr(out, k, tmp_path / f"{k}.png")
    write_report_inputs(union, {"ape": ape}, {}, {"ape": tmp_path / "ape.summits.tsv"}, ["ape"], out)
    assert pd.read_csv(out.summary, sep="\t").empty and pd.read_csv(out.reasons, sep="\t").empty
    assert pd.read_csv(out.widths, sep="\t").set_index("what").loc["final_peak", "n"] == len(ape)
    for png in (out.plot_classes, out.plot_reasons, out.plot_widths):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
