# Per-task fine-tuning from the MT-DNN model ("mtdnn") or from the plain encoder ("base", the
# single-task baseline). Same code path; only the starting point differs.
rule finetune:
    input:
        data=lambda wc: tokenized(wc.task),
        init=lambda wc: GRID.mtl_model(wc.seed) if wc.init == "mtdnn" else [],
    output:
        directory("models/finetune/{init}/{enc}/{task}/seed{seed}"),
    log:
        "logs/finetune/{init}/{enc}/{task}/seed{seed}.log",
    conda:
        "../envs/mtdnn.yaml"
    threads: lookup(dpath="finetune/threads", within=config, default=1)
    resources:
        gpu=1,
        mem_mb=3000,
        runtime=240,
    params:
        cfg=lambda wc: GRID.stage_json("finetune", wc.task),
        max_len=lookup(dpath="tokenize/max_len", within=config),
        init_arg=lambda wc, input: f"--init {input.init}" if wc.init == "mtdnn" else "",
    shell:
        "mtdnn finetune --task {wildcards.task} {params.init_arg} --encoder {wildcards.enc} "
        "--max-len {params.max_len} --seed {wildcards.seed} --cfg {params.cfg:q} "
        "--threads {threads} --out {output} > {log} 2>&1"


# One GLUE table cell: a model evaluated on a task's dev split(s), with provenance.
rule evaluate:
    input:
        model=cell_model,
        data=lambda wc: tokenized(wc.task),
    output:
        "results/cells/glue/{model}/{enc}/{task}/seed{seed}.json",
    log:
        "logs/evaluate/{model}/{enc}/{task}/seed{seed}.log",
    conda:
        "../envs/mtdnn.yaml"
    threads: lookup(dpath="finetune/threads", within=config, default=1)
    resources:
        gpu=1,
    shell:
        "mtdnn evaluate --model {input.model} --task {wildcards.task} --out {output} "
        "--cell table=glue --cell model={wildcards.model} --cell seed={wildcards.seed} "
        "--cell encoder={wildcards.enc} --threads {threads} > {log} 2>&1"
