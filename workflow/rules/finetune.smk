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
    params:
        cfg=lambda wc: GRID.knobs("finetune", wc.key, wc.task, wc.init),
        encoder=GRID.encoder,
        max_len=lookup(dpath="tokenize/max_len", within=config),
        init_arg=lambda wc, input: f"--init {input.init}" if wc.init == "mtdnn" else "",
    shell:
        "mtdnn finetune --task {wildcards.task} {params.init_arg} --encoder {params.encoder} "
        "--max-len {params.max_len} --seed {wildcards.seed} --cfg {params.cfg:q} "
        "--threads {threads} --out {output.model} --cell-out {output.cell} --cell table=glue "
        "--cell model={wildcards.init} --cell seed={wildcards.seed} --cell encoder={wildcards.enc} "
        "> {log} 2>&1"
