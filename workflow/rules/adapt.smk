# Domain adaptation (paper 4.4): fine-tune on a seeded, stratified, nested subsample of the target's
# training data, from the MT-DNN encoder (trained on GLUE only) or the plain encoder. Linear head.
# The cell keeps its evaluation predictions beside it, for the table's paired bootstrap.
rule adapt:
    input:
        data=lambda wc: tokenized(wc.task, wc.enc),
        # The MT-DNN init: multi-task trained on GLUE with adaptation's own encoder.
        init=lambda wc: (
            GRID.mtl_model(GRID.adapt_mtl_seed, GRID.adapt_encoder)
            if wc.init == "mtdnn"
            else []
        ),
    output:
        cell=paths.adapt_cell("{init}", "{enc}", "{task}", "{size}", "{key}", "{seed}"),
        preds=predictions_path(
            paths.adapt_cell("{init}", "{enc}", "{task}", "{size}", "{key}", "{seed}")
        ),
    log:
        "logs/adapt/{init}/{enc}/{task}/{size}/{key}/seed{seed}.log",
    wildcard_constraints:
        size=r"(n\d+|p[0-9.e-]+)",
    conda:
        "../envs/mtdnn.yaml"
    threads: lookup(dpath="adapt/threads", within=config, default=1)
    resources:
        gpu=lambda wc: gpus("adapt"),
        shell_exec=lambda wc: gpu_shell(gpus("adapt")),
        mem_mb=train_mem_mb,
        runtime=train_runtime,
    # The job as one JSON record (knobs, key, paths, subsample, splits): see train_mtl.
    params:
        spec=lambda wc: rule_spec(GRID, "adapt", wc),
    shell:
        "mtdnn run --spec {params.spec:q} --threads {threads} > {log} 2>&1"
