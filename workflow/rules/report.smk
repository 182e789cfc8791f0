# The GLUE table, and the DVCLive training curves of the models behind it (for `dvc plots`).
rule glue_table:
    input:
        cells=GRID.glue_cells(),
        # each cell's dev predictions, which the paired bootstrap resamples
        preds=[predictions_path(cell) for cell in GRID.glue_cells()],
        # ancient: read for their DVCLive curves only; a DVC checkout rewrites directory mtimes,
        # and the cells above already change whenever a model does.
        models=[ancient(m) for m in glue_models()],
    output:
        csv=report(
            "results/glue.csv",
            caption="../report/glue.rst",
            category="GLUE",
            labels={"result": "GLUE dev table"},
        ),
        markdown="results/glue.md",
        metrics="results/metrics.json",
        # drawn from the same bootstrap rows as glue.md's intervals, in the same job
        forest=report(
            "results/glue_forest.png",
            caption="../report/glue_forest.rst",
            category="GLUE",
            labels={"result": "MT-DNN − baseline, 95 % CI (forest plot)"},
        ),
        # each model's DVCLive plot files, copied unchanged under its stable name (mtl-seed1,
        # base-rte-seed1, ...: its place in the models/ layout, mtdnn.paths.model_name)
        # into dvclive/ inside it: model paths carry knob hashes, and `dvc plots diff` pairs files
        # across experiments by path. One level down, because this directory also holds
        # Snakemake's .snakemake_timestamp, which DVC would try to read as a plot. Beside it,
        # summary/: each model's DVCLive metrics.json as <model>.json (`dvc exp show` lists them).
        curves=directory("results/plots/training"),
    log:
        "logs/report/glue.log",
    conda:
        "../envs/mtdnn.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        decimals=lookup(dpath="report/decimals", within=config, default=1),
        # Tasks the profile names but left out here (data.optional_tasks): the table's footnote.
        skipped=",".join(GRID.skipped_tasks),
    shell:
        "(mtdnn report glue {input.cells} --csv {output.csv} --markdown {output.markdown} "
        "--metrics {output.metrics} --forest {output.forest} --decimals {params.decimals} "
        "--skipped '{params.skipped}' && "
        "mtdnn training-curves {input.models} --out {output.curves}/dvclive "
        "--summaries {output.curves}/summary) > {log} 2>&1"


rule adapt_table:
    input:
        cells=GRID.adapt_cells(),
        preds=[predictions_path(cell) for cell in GRID.adapt_cells()],
    output:
        csv=report(
            "results/domain_adaptation.csv",
            caption="../report/adapt_table.rst",
            category="Domain adaptation",
            labels={"result": "accuracy by training-set size (table)"},
        ),
        markdown="results/domain_adaptation.md",
        metrics="results/adapt_metrics.json",
        plot=report(
            "results/domain_adaptation.png",
            caption="../report/adapt_plot.rst",
            category="Domain adaptation",
            labels={"result": "accuracy by training-set size (curves)"},
        ),
        forest=report(
            "results/domain_adaptation_forest.png",
            caption="../report/adapt_forest.rst",
            category="Domain adaptation",
            labels={"result": "MT-DNN init − base init, 95 % CI (forest plot)"},
        ),
    log:
        "logs/report/adapt.log",
    conda:
        "../envs/mtdnn.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        decimals=lookup(dpath="report/decimals", within=config, default=1),
    shell:
        "mtdnn report adapt {input.cells} --csv {output.csv} --markdown {output.markdown} "
        "--metrics {output.metrics} --plot {output.plot} --forest {output.forest} "
        "--decimals {params.decimals} > {log} 2>&1"
