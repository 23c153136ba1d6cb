"""Make the CHAI-finetuned Wan2.2: re-caption clips with the CHAI captioner and train a LoRA.

    python -m studio dataset CLIPS --out DATASET        clips -> shots -> captions -> cached latents
    python -m studio train DATASET --out LORA_DIR       cached latents -> LoRA (accelerate, resumable)
    python -m studio generate ... --finetuned LORA_DIR  the LoRA in the finetuned slot

Modules: `sources` (which clips), `dataset` (spec, plan, in-process build), `folder` (the dataset on
disk), `stages` (caption / encode one shot), `ray_stages` (the same on Ray Data), `encoders` (VAE
and text encoder), `options` (hyper-parameters), `plan` (request checks), `flow` (the objective),
`trainer` (the loop), `artifacts` (metrics, checkpoints, LoRA, card). Nothing here is imported by
the page; torch, peft, accelerate and Ray load only inside the commands.
"""
