# Multi-task training (Algorithm 1) on every GLUE task with a training split, WNLI excluded.
# mtl.nproc > 1 runs it under torchrun (one process per GPU, DDP).
rule train_mtl:
    input:
        [tokenized(t) for t in GRID.mtl_tasks],
    output:
        model=directory("models/mtl/{enc}/seed{seed}"),
        # The "MT-DNN, no fine-tuning" cells, evaluated in the training job itself.
        cells=expand(
            "results/cells/glue/mtl/{{enc}}/{task}/seed{{seed}}.json",
            task=GRID.mtl_cell_tasks,
        ),
    log:
        "logs/train_mtl/{enc}/seed{seed}.log",
    # Start multi-task training first: every MT-DNN fine-tuning waits for it.
    priority: 10
    conda:
        "../envs/mtdnn.yaml"
    threads: lookup(dpath="mtl/threads", within=config, default=1)
    resources:
        gpu=lookup(dpath="mtl/nproc", within=config, default=1),
        mem_mb=4000,
        runtime=720,
    params:
        tasks=",".join(GRID.mtl_tasks),
        eval_tasks=",".join(GRID.mtl_cell_tasks),
        cfg=GRID.stage_json("mtl"),
        max_len=lookup(dpath="tokenize/max_len", within=config),
        launcher=(
            f"torchrun --standalone --nproc-per-node {config['mtl']['nproc']} -m mtdnn"
            if config["mtl"].get("nproc", 1) > 1
            else "mtdnn"
        ),
    shell:
        "{params.launcher} train-mtl --tasks {params.tasks} --encoder {wildcards.enc} "
        "--max-len {params.max_len} --seed {wildcards.seed} --cfg {params.cfg:q} "
        "--threads {threads} --out {output.model} --cells-dir results/cells/glue/mtl/{wildcards.enc} "
        "--eval-tasks {params.eval_tasks} --cell table=glue --cell model=mtl "
        "--cell seed={wildcards.seed} --cell encoder={wildcards.enc} > {log} 2>&1"
