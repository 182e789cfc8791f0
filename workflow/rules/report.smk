rule glue_table:
    input:
        GRID.glue_cells(),
    output:
        csv="results/glue.csv",
        markdown="results/glue.md",
        metrics="results/metrics.json",
    log:
        "logs/report/glue.log",
    conda:
        "../envs/mtdnn.yaml"
    params:
        decimals=lookup(dpath="report/decimals", within=config, default=1),
        # Tasks the profile names but left out here (data.optional_tasks): the table's footnote.
        skipped=",".join(GRID.skipped_tasks),
    shell:
        "mtdnn report glue {input} --csv {output.csv} --markdown {output.markdown} "
        "--metrics {output.metrics} --decimals {params.decimals} "
        "--skipped '{params.skipped}' > {log} 2>&1"


rule adapt_table:
    input:
        GRID.adapt_cells(),
    output:
        csv="results/domain_adaptation.csv",
        markdown="results/domain_adaptation.md",
        metrics="results/adapt_metrics.json",
        plot="results/domain_adaptation.png",
    log:
        "logs/report/adapt.log",
    conda:
        "../envs/mtdnn.yaml"
    params:
        decimals=lookup(dpath="report/decimals", within=config, default=1),
    shell:
        "mtdnn report adapt {input} --csv {output.csv} --markdown {output.markdown} "
        "--metrics {output.metrics} --plot {output.plot} --decimals {params.decimals} > {log} 2>&1"
