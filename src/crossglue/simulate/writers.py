"""Writers for every simulated file, in the formats real users bring (and byte-reproducible).

gzip members carry mtime 0 and no file name; BGZF (fragments, FASTA) has no timestamps;
HDF5 files are written without object timestamps. Every file goes through ``atomic_path``.
"""

from __future__ import annotations

import gzip
import io
import os
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pysam
import scipy.sparse as sp

from crossglue.io_utils import atomic_path


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def gzip_bytes(data: bytes) -> bytes:
    """gzip with a fixed header (mtime 0, no name) so identical input gives identical bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def write_table(path: Path, table: pd.DataFrame, header: bool = True, compress: bool = False) -> None:
    text = table.to_csv(sep="\t", index=False, header=header, lineterminator="\n", na_rep="NA").encode()
    write_bytes(path, gzip_bytes(text) if compress else text)


@contextmanager
def staged(paths: Iterable[Path]):
    """Build several related files (data + index) in a temporary folder beside them, then
    move them into place in the given order (index last), so no reader sees a half set."""
    paths = [Path(p) for p in paths]
    folder = paths[0].parent
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".stage.", dir=folder) as tmp:
        staged_paths = [Path(tmp) / p.name for p in paths]
        yield staged_paths
        for src, dst in zip(staged_paths, paths, strict=True):
            os.replace(src, dst)


def write_chrom_sizes(path: Path, sizes: dict[str, int]) -> None:
    write_bytes(path, "".join(f"{c}\t{n}\n" for c, n in sizes.items()).encode())


def write_aliases(path: Path, aliases: dict[str, list[str]], columns: list[str]) -> None:
    """UCSC chromAlias style: '#' header naming the conventions, one row per chromosome."""
    lines = ["# " + "\t".join(columns)] + ["\t".join([c, *names]) for c, names in aliases.items()]
    write_bytes(path, ("\n".join(lines) + "\n").encode())


def gtf_text(
    genes: pd.DataFrame,
    exons: pd.DataFrame,
    chrom_names: dict[str, str],
    chrom_order: list[str],
    tx_prefix: str,
    source: str,
) -> bytes:
    """GENCODE/Ensembl-style GTF: gene, transcript and exon lines, 1-based closed coordinates."""
    g = genes.copy()
    g["gid"] = g.gene_id + "." + g.version.astype(str)
    g["tid"] = tx_prefix + g.gene_id.str.extract(r"(\d+)$")[0] + "." + g.version.astype(str)
    name_attr = np.where(g.gene_name != "", ' gene_name "' + g.gene_name + '";', "")
    g["attr_gene"] = 'gene_id "' + g.gid + '"; gene_type "' + g.gene_type + '";' + name_attr
    g["attr_tx"] = g.attr_gene + ' transcript_id "' + g.tid + '"; transcript_type "' + g.gene_type + '";'
    g["rank"] = g.chrom.map({c: i for i, c in enumerate(chrom_order)})
    g["strand_c"] = np.where(g.strand > 0, "+", "-")
    ex = exons.merge(g[["gene_id", "attr_tx", "strand_c"]], on="gene_id")
    ex["attr"] = ex.attr_tx + " exon_number " + ex.exon_number.astype(str) + ";"

    def lines(t, feature, attr):
        return pd.DataFrame(
            {
                "chrom": t.chrom.map(chrom_names),
                "src": source,
                "feature": feature,
                "start": t.start + 1,
                "end": t.end,
                "score": ".",
                "strand": t.strand_c,
                "frame": ".",
                "attr": t[attr],
                "gene_id": t.gene_id,
                "sub": 0 if feature != "exon" else t.exon_number,
            }
        )

    parts = [
        lines(g, "gene", "attr_gene").assign(kind=0),
        lines(g, "transcript", "attr_tx").assign(kind=1),
        lines(ex, "exon", "attr").assign(kind=2),
    ]
    table = pd.concat(parts, ignore_index=True)
    gene_pos = g.set_index("gene_id")[["rank", "start"]]
    table["rank"] = gene_pos["rank"].reindex(table.gene_id).to_numpy()
    table["gstart"] = gene_pos["start"].reindex(table.gene_id).to_numpy()
    table = table.sort_values(["rank", "gstart", "gene_id", "kind", "sub"], kind="stable")
    header = f"##description: simulated annotation (crossglue.simulate)\n##provider: {source}\n##format: gtf\n"
    body = table[["chrom", "src", "feature", "start", "end", "score", "strand", "frame", "attr"]].to_csv(
        sep="\t", header=False, index=False, lineterminator="\n", quoting=3, escapechar=None
    )
    return (header + body).encode()


def write_fasta(path: Path, text: bytes, fai: list[tuple]) -> None:
    """bgzip FASTA with .fai (and .gzi from samtools' faidx), staged then moved into place."""
    targets = [path, Path(f"{path}.gzi"), Path(f"{path}.fai")]
    with staged(targets) as (fa, gzi, fai_path):
        plain = fa.with_suffix("")
        plain.write_bytes(text)
        pysam.tabix_compress(str(plain), str(fa), force=True)
        plain.unlink()
        pysam.faidx(str(fa))  # writes .fai and .gzi beside it
        written = fai_path.read_text().splitlines()
        assert [r.split("\t")[0] for r in written] == [r[0] for r in fai]


def _digits(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decimal digits of non-negative integers as a right-aligned byte matrix, and its mask."""
    values = np.asarray(values, dtype=np.int64)
    width = len(str(int(values.max()))) if len(values) else 1
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = ((values[:, None] // powers) % 10 + ord("0")).astype(np.uint8)
    n_digits = np.searchsorted(10 ** np.arange(1, 19, dtype=np.int64), values, side="right") + 1
    return digits, np.arange(width)[None, :] >= (width - n_digits)[:, None]


def _label_bytes(codes: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Left-aligned byte matrix of categorical labels, and its mask."""
    encoded = np.array([n.encode() for n in names])
    width = max(len(n) for n in encoded)
    table = np.frombuffer(encoded.astype(f"S{width}").tobytes(), np.uint8).reshape(len(encoded), width)
    mask = np.arange(width)[None, :] < np.array([len(n) for n in encoded])[:, None]
    return table[codes], mask[codes]


def tsv_bytes(columns: list[tuple[np.ndarray, np.ndarray]]) -> bytes:
    """Tab-separated lines from (byte matrix, mask) columns, built without a loop over rows
    (3-4x faster than ``DataFrame.to_csv`` on millions of fragments)."""
    n = len(columns[0][0])
    tab = (np.full((n, 1), ord("\t"), np.uint8), np.ones((n, 1), bool))
    newline = (np.full((n, 1), ord("\n"), np.uint8), np.ones((n, 1), bool))
    parts = [p for col in columns for p in (col, tab)][:-1] + [newline]
    return np.hstack([p[0] for p in parts])[np.hstack([p[1] for p in parts])].tobytes()


def write_fragments(path: Path, frags: pd.DataFrame, chrom_names: dict[str, str], header: dict[str, str]) -> None:
    """10x fragments.tsv.gz: '#' header lines as Cell Ranger writes them, then sorted records;
    bgzip-compressed (level 3: 4x faster than 6, 20 % larger), tabix-indexed with 0-based
    starts (``tabix -p bed``)."""
    chroms = [chrom_names.get(c, c) for c in frags.chrom.cat.categories]
    barcodes = pd.Categorical(frags.barcode)
    with staged([path, Path(f"{path}.tbi")]) as (gz, tbi):
        bgzf = pysam.BGZFile(str(gz), "wb3")
        try:
            bgzf.write("".join(f"# {k}={v}\n" for k, v in header.items()).encode())
            for lo in range(0, len(frags), 1_000_000):  # bounded memory at large scales
                sl = slice(lo, lo + 1_000_000)
                bgzf.write(
                    tsv_bytes(
                        [
                            _label_bytes(frags.chrom.cat.codes.to_numpy()[sl], chroms),
                            _digits(frags.start.to_numpy()[sl]),
                            _digits(frags.end.to_numpy()[sl]),
                            _label_bytes(barcodes.codes[sl], list(barcodes.categories)),
                            _digits(frags["count"].to_numpy()[sl]),
                        ]
                    )
                )
        finally:
            bgzf.close()
        pysam.tabix_index(str(gz), preset="bed", force=True)
        assert tbi.exists()


def write_10x_h5(
    path: Path, counts: sp.csr_matrix, barcodes: np.ndarray, gene_ids: np.ndarray, gene_names: np.ndarray, genome: str
) -> None:
    """Cell Ranger v3 filtered_feature_bc_matrix.h5 (features x barcodes, CSC), Gene Expression only."""
    x = counts.tocsr()
    gene_names = np.where(gene_names == "", gene_ids, gene_names)  # Cell Ranger names unnamed genes by id
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=False) as f:
        f.attrs["filetype"] = "matrix"
        f.attrs["version"] = 2
        f.attrs["chemistry_description"] = "Single Cell 3' v3"
        f.attrs["library_ids"] = np.array([b"sim"])
        f.attrs["original_gem_groups"] = np.array([1])
        m = f.create_group("matrix")
        opts = {"compression": "gzip", "compression_opts": 4, "shuffle": True, "track_times": False}
        m.create_dataset("barcodes", data=np.array(barcodes, dtype="S"), **opts)
        m.create_dataset("data", data=x.data.astype(np.int32), **opts)
        m.create_dataset("indices", data=x.indices.astype(np.int64), **opts)
        m.create_dataset("indptr", data=x.indptr.astype(np.int64), **opts)
        m.create_dataset("shape", data=np.array([x.shape[1], x.shape[0]], dtype=np.int32), track_times=False)
        feat = m.create_group("features")
        n = len(gene_ids)
        feat.create_dataset("_all_tag_keys", data=np.array([b"genome"]), track_times=False)
        feat.create_dataset("feature_type", data=np.array([b"Gene Expression"] * n), **opts)
        feat.create_dataset("genome", data=np.array([genome.encode()] * n), **opts)
        feat.create_dataset("id", data=np.array(gene_ids, dtype="S"), **opts)
        feat.create_dataset("name", data=np.array(gene_names, dtype="S"), **opts)


def write_counts_h5ad(
    path: Path, counts: sp.csr_matrix, barcodes: np.ndarray, gene_ids: np.ndarray, gene_names: np.ndarray, genome: str
) -> None:
    """AnnData as `scanpy.read_10x_h5` + `var_names_make_unique` leaves it: symbols as var_names."""
    import anndata as ad

    names = np.where(gene_names == "", gene_ids, gene_names)
    # Paralogues may share a symbol (macaque): "-1" suffixes, as var_names_make_unique adds them.
    index = ad.utils.make_index_unique(pd.Index(names, name=None))
    var = pd.DataFrame({"gene_ids": gene_ids, "feature_types": "Gene Expression", "genome": genome}, index=index)
    adata = ad.AnnData(X=counts.astype(np.float32).tocsr(), obs=pd.DataFrame(index=pd.Index(barcodes)), var=var)
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp, compression="gzip")


def write_chain_file(path: Path, blocks: pd.DataFrame, t_sizes: dict[str, int], q_sizes: dict[str, int]) -> None:
    """UCSC chain file through ``crossglue.genomics.chain`` (the project's chain model and formatter),
    gzip-compressed with a fixed header so that the bytes are reproducible."""
    from crossglue.genomics.chain import chains_from_blocks, format_chains

    text = format_chains(chains_from_blocks(blocks, t_sizes, q_sizes)).encode("ascii")
    write_bytes(path, gzip_bytes(text))
