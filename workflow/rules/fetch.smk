# Stage what the profile reads from the Hugging Face Hub, for compute nodes without internet:
#   snakemake --cores 1 fetch     (on the login node, once; then export HF_HUB_OFFLINE=1)
# A local rule (it needs the login node's network, never a cluster job) without outputs: Snakemake
# runs it whenever it is asked for, and `mtdnn fetch` itself skips what is already staged. A flag
# file would make it skip the run after the profile gains a task or an encoder.
rule fetch:
    log:
        "logs/fetch.log",
    localrule: True
    conda:
        "../envs/mtdnn.yaml"
    shell:
        # tee: the login node's user sees what was staged, and the log keeps it
        "mtdnn fetch --params params.yaml 2>&1 | tee {log}"
