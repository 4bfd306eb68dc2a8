"""The cross-species GLUE model, and (with model.ablation) the same model without
element-element edges, so the report can show what the liftOver prior adds."""

# run -> whether its graph keeps element-element edges
MODEL_RUNS = {"model": config["graph"]["element_edges"]}
if config["model"]["ablation"]:
    MODEL_RUNS["model_ablation"] = False


wildcard_constraints:
    run="|".join(MODEL_RUNS),


rule train_model:
    input:
        rna=expand("results/ingest/{species}/rna.h5ad", species=species_names),
        atac=per_atac_species("results/counts/{species}/atac.h5ad"),
        edges="results/graph/guidance_edges.tsv.gz",
        orthologs="results/graph/ortholog_links.tsv.gz",
    output:
        cells="results/{run}/cells.h5ad",
        mudata="results/{run}/cells.h5mu",
        features="results/{run}/features.h5ad",
        model="results/{run}/model.pt",
        log="results/{run}/training_log.tsv",
        selection="results/{run}/feature_selection.tsv",
    log:
        "logs/model/train_{run}.log",
    benchmark:
        "benchmarks/model/train_{run}.tsv"
    conda:
        "../../envs/model.yaml"
    threads: config["model"]["threads"]
    resources:
        mem_mb=config["model"]["mem_mb"],
        runtime=config["model"]["runtime"],
        gpu=config["model"]["gpus"],
    params:
        species=species_names,
        atac_species=ATAC_SPECIES,
        settings=config["model"],
        element_edges=lambda wc: MODEL_RUNS[wc.run],
        checkpoints=lambda wc: f"results/checkpoints/{wc.run}",
    script:
        "../scripts/train_model.py"
