# Per-task fine-tuning from the MT-DNN model ("mtdnn") or from the plain encoder: "base", standard
# fine-tuning, and "equal", the equal-exposure baseline (finetune.baselines). Same code path and
# the same rows; only the starting point (and the equal-exposure schedule) differs. The job also
# evaluates the model it trained and writes its GLUE table cell (dev metrics + provenance): one
# process start and one model load per cell instead of two. The cell keeps its dev predictions beside it
# (seed1.json -> seed1.preds.parquet), which the tables' paired bootstrap resamples.
rule finetune:
    input:
        data=lambda wc: tokenized(wc.task),
        init=lambda wc: GRID.mtl_model(wc.seed) if wc.init == "mtdnn" else [],
    output:
        model=directory(
            paths.finetune_dir("{init}", "{enc}", "{task}", "{key}", "{seed}")
        ),
        cell=paths.glue_cell("{init}", "{enc}", "{task}", "{key}", "{seed}"),
        preds=predictions_path(
            paths.glue_cell("{init}", "{enc}", "{task}", "{key}", "{seed}")
        ),
    log:
        "logs/finetune/{init}/{enc}/{task}/{key}/seed{seed}.log",
    conda:
        "../envs/mtdnn.yaml"
    threads: lookup(dpath="finetune/threads", within=config, default=1)
    resources:
        gpu=lambda wc: gpus("finetune"),
        shell_exec=lambda wc: gpu_shell(gpus("finetune")),
        mem_mb=train_mem_mb,
        runtime=train_runtime,
    # The job as one JSON record (knobs, key, paths, cell coordinates): see train_mtl.
    params:
        spec=lambda wc: rule_spec(GRID, "finetune", wc),
    shell:
        "mtdnn run --spec {params.spec:q} --threads {threads} > {log} 2>&1"
