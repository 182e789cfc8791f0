# Multi-task training (Algorithm 1) on every GLUE task with a training split, WNLI excluded.
# mtl.nproc > 1 runs it under torchrun (one process per GPU, DDP).
rule train_mtl:
    input:
        lambda wc: [tokenized(t, wc.enc) for t in GRID.mtl_tasks],
    output:
        model=directory(paths.mtl_dir("{enc}", "{key}", "{seed}")),
        # The "MT-DNN, no fine-tuning" cells, evaluated in the training job itself.
        cells=expand(
            paths.glue_cell("mtl", "{{enc}}", "{task}", "{{key}}", "{{seed}}"),
            task=GRID.mtl_cell_tasks,
        ),
        # Each cell's dev predictions, beside it (the job's evaluation writes them).
        preds=expand(
            predictions_path(
                paths.glue_cell("mtl", "{{enc}}", "{task}", "{{key}}", "{{seed}}")
            ),
            task=GRID.mtl_cell_tasks,
        ),
    log:
        "logs/train_mtl/{enc}/{key}/seed{seed}.log",
    # Start multi-task training first: every MT-DNN fine-tuning waits for it.
    priority: 10
    conda:
        "../envs/mtdnn.yaml"
    threads: lookup(dpath="mtl/threads", within=config, default=1)
    resources:
        gpu=lambda wc: gpus("mtl"),
        shell_exec=lambda wc: gpu_shell(gpus("mtl")),
        mem_mb=train_mem_mb,
        runtime=train_runtime,
        # sbatch --nodes=1: torchrun --standalone cannot span an allocation spread over two nodes.
        nodes=1,
        launcher=mtl_launcher(),
    params:
        tasks=",".join(GRID.mtl_tasks),
        eval_tasks=",".join(GRID.mtl_cell_tasks),
        cfg=lambda wc: GRID.knobs("mtl", wc.key, enc=wc.enc),
        # GLUE's encoder, or adapt.encoder for the MT-DNN init of domain adaptation
        encoder=lambda wc: GRID.encoder_of(wc.enc),
        cells=lambda wc: paths.glue_cell("mtl", wc.enc, "{task}", wc.key, wc.seed),
        max_len=lookup(dpath="tokenize/max_len", within=config),
    shell:
        "{resources.launcher} train-mtl --tasks {params.tasks} --encoder {params.encoder} "
        "--max-len {params.max_len} --seed {wildcards.seed} --cfg {params.cfg:q} "
        "--threads {threads} --out {output.model} --cells {params.cells} "
        "--eval-tasks {params.eval_tasks} --cell table=glue --cell model=mtl "
        "--cell seed={wildcards.seed} --cell encoder={wildcards.enc} > {log} 2>&1"
