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
    # The whole job (knobs, key, data, outputs, cell coordinates) as one JSON record, inline: a
    # params entry, so that a knob change reruns the job (mtdnn/rulespecs.py says why it is
    # built from the wildcards alone).
    params:
        spec=lambda wc: rule_spec(GRID, "mtl", wc),
    shell:
        "{resources.launcher} run --spec {params.spec:q} --threads {threads} > {log} 2>&1"
