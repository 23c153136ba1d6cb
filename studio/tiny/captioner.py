"""A tiny random-weight Qwen3-VL captioner, built offline.

The folder has the real checkpoint's layout and classes: `Qwen3VLConfig` (tiny text and vision
configs), `Qwen3VLForConditionalGeneration` weights, a `Qwen3VLProcessor` with its video and image
processors, a byte-level BPE tokenizer trained here on a few hundred words of our own, and a chat
template in the Qwen format. `AutoProcessor` / `AutoModelForImageTextToText.from_pretrained(folder)`
load it exactly as they load `chancharikm/CHAI_SFT_model_8b`. Its outputs are noise; shapes,
files, special tokens and code paths are real.
"""

from __future__ import annotations

from pathlib import Path

from ..resources import prompts_dir

# Special tokens the Qwen3-VL processor, model config and chat template refer to by name.
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]

# A chat template in the Qwen layout: each turn is "<|im_start|>role\n...<|im_end|>\n"; a video or
# image in a user turn becomes a vision placeholder that the processor expands frame by frame.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'video' %}{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{% elif part['type'] == 'image' %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Training text for the tokenizer: our own words about shots, plus the words the instruction
# templates use, so that prompts tokenize into a few hundred ids rather than raw bytes.
_WORDS = """
Yes No yes no the a an and or of in on at to from with by for as is are was were be been this that these
those it its they them their he she his her we you your one two three four five first second third last
next then while after before during when where which who what how shot clip video frame frames caption
captions aspect aspects subject subjects scene scenes motion spatial camera critique revise reward merge
describe description write rewrite answer question match matches does do not nothing needs change changes
changed correct incorrect wrong missing add remove keep only precise precisely exact exactly clear clearly
single paragraph sentence sentences words word short long wide medium close closeup extreme shot size angle
low high eye level overhead aerial birds dutch tilt tilted pan pans panning tracking dolly dollies zoom
zooms push pull crane truck arc handheld static locked steady shaky rack focus shallow deep depth field
lens wide telephoto fisheye foreground background midground left right center top bottom frame framing
edge corner person people man woman child children dog cat car street road city room house window door
table chair light lights lighting shadow shadows sun sunlight night day evening morning rain snow fog
water sea river forest tree trees grass sky cloud clouds building buildings wall walls floor ceiling
walks walk walking runs run running turns turn turning looks look looking sits sit sitting stands stand
standing moves move moving holds hold holding raises lowers opens closes enters exits leaves arrives
slowly quickly gently suddenly smoothly steadily toward towards away across along around behind front
above below under over between into onto out up down forward backward back side sides inside outside
indoor outdoor interior exterior red blue green yellow white black gray grey brown orange purple dark
bright warm cool soft hard color colors colour tone tones mood cinematic film films filmmaker style look
composition composed balanced symmetric asymmetric rule thirds horizon line lines leading point view
pov perspective subjective objective observer character characters object objects face faces hand hands
body head eyes hair coat shirt dress jacket hat glasses bag phone book cup glass bottle screen sign text
""".split()


def _training_lines() -> list[str]:
    lines = []
    # The shipped instruction templates are our own text too; training on them gives the prompts a
    # realistic length in tokens (about 1.3 per word, as with a full-size tokenizer).
    folder = prompts_dir() / "captioner"
    for path in sorted(folder.rglob("*.txt")) if folder.is_dir() else ():
        lines += path.read_text(encoding="utf-8").splitlines() * 3
    words = _WORDS
    for step in (1, 2, 3, 5, 7):
        for start in range(0, len(words), 9):
            chunk = words[start::step][:12]
            lines.append(" ".join(chunk))
    lines += ["Yes", "No", "Yes.", "No.", "Answer Yes or No."] * 50
    lines += [f"<{t / 10:.1f} seconds>" for t in range(0, 600, 3)]
    return lines


def build_tokenizer(vocab_size: int = 2000):
    """A byte-level BPE tokenizer wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(_training_lines(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:], model_max_length=32768,
        padding_side="left", clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_qwen3vl_config(tokenizer, hidden_size: int = 256, layers: int = 4):
    """Qwen3VLConfig with tiny text and vision towers; token ids come from the tokenizer."""
    from transformers import Qwen3VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = 64
    text = dict(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
        num_hidden_layers=layers, num_attention_heads=hidden_size // head_dim, num_key_value_heads=2,
        head_dim=head_dim, max_position_embeddings=4096, pad_token_id=ids["<|endoftext|>"],
        # Multimodal RoPE: the rotary half-dimension (32) split across time, height and width.
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0,
                         "mrope_section": [12, 10, 10], "mrope_interleaved": True},
        # Larger than the usual 0.02 so that greedy choices are decisive rather than near-ties.
        initializer_range=0.08,
    )
    vision = dict(
        depth=2, hidden_size=64, intermediate_size=128, num_heads=2, patch_size=16, spatial_merge_size=2,
        temporal_patch_size=2, out_hidden_size=hidden_size, num_position_embeddings=256,
        deepstack_visual_indexes=[1],
    )
    return Qwen3VLConfig(
        text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=False,
    )


def build_processor(tokenizer):
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    # Small pixel budgets keep the vision sequence to a handful of tokens per frame pair.
    image_processor = Qwen2VLImageProcessor(
        patch_size=16, temporal_patch_size=2, merge_size=2,
        size={"shortest_edge": 32 * 32, "longest_edge": 128 * 128},
    )
    video_processor = Qwen3VLVideoProcessor(
        patch_size=16, temporal_patch_size=2, merge_size=2,
        size={"shortest_edge": 32 * 32 * 2, "longest_edge": 32 * 32 * 48}, cap_pixels_per_frame=False,
    )
    return Qwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                            video_processor=video_processor, chat_template=CHAT_TEMPLATE)


def build_tiny_captioner(folder: str | Path, seed: int = 0, hidden_size: int = 256, layers: int = 4) -> None:
    """Write the tiny captioner (config, weights, processor, tokenizer, chat template) to `folder`."""
    import torch
    from transformers import GenerationConfig, Qwen3VLForConditionalGeneration

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    processor = build_processor(tokenizer)
    config = tiny_qwen3vl_config(tokenizer, hidden_size=hidden_size, layers=layers)
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config).eval()
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config = GenerationConfig(
        eos_token_id=[end], pad_token_id=config.text_config.pad_token_id,
        do_sample=False, max_new_tokens=32,  # noise either way; keeps tiny calls short
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
