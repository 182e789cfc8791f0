# Data jobs first: they are cheap, and every training job waits on them (priority is not inherited:
# without it, a tokenization that multi-task training needs could wait behind baseline fine-tunings).
rule prepare:
    output:
        directory(str(paths.canonical_dir("{task}"))),
    log:
        "logs/prepare/{task}.log",
    priority: 20
    conda:
        "../envs/mtdnn.yaml"
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        glue_dir=GRID.glue_dir or "",
        # sources and hub_dir are rerun triggers only (prepare reads them from params.yaml itself):
        # a change of where a task's data comes from rebuilds that task.
        sources=lambda wc: config["data"]["sources"].get(wc.task, {}),
        hub_dir=config["data"].get("hub_dir") or "",
        glue_arg=f"--glue-dir {GRID.glue_dir}" if GRID.glue_dir else "",
    shell:
        "mtdnn prepare --task {wildcards.task} --need-train {params.glue_arg} --out {output} "
        "> {log} 2>&1"


rule tokenize:
    input:
        str(paths.canonical_dir("{task}")),
    output:
        directory(str(paths.tokenized_path("{enc}", "{max_len}", "{task}"))),
    log:
        "logs/tokenize/{enc}-L{max_len}/{task}.log",
    wildcard_constraints:
        max_len=r"\d+",
    priority: 20
    conda:
        "../envs/mtdnn.yaml"
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        encoder=lambda wc: GRID.encoder_of(wc.enc),
    shell:
        "mtdnn tokenize --task {wildcards.task} --encoder {params.encoder} "
        "--max-len {wildcards.max_len} --canonical {input} --out {output} > {log} 2>&1"


# Every dataset the configured tables need, prepared and tokenized (DVC's `data` stage).
rule data:
    input:
        [tokenized(task, enc) for enc, task in GRID.tokenizations()],
