"""The page's look: CSS (desktop and a 390-px-wide phone), the section links, and the script that
keeps the two result videos in step (and says a non-video upload is refused, once)."""

NAV = ('<nav class="studio-nav">'
       + " ".join(f'<a href="#section-{key}">{n} · {label}</a>' for n, (key, label) in enumerate(
           (("reference", "Reference"), ("caption", "Caption"), ("prompt", "Prompt"), ("generate", "Generate"),
            ("history", "History")), start=1))
       + "</nav>")

CSS = """
.studio-hidden { display: none !important; }
#tiny-banner { background: #fff4d6; border: 1px solid #e0b84a; border-radius: 6px; padding: 4px 12px; }
#gpu-banner { background: #fde2e1; border: 1px solid #d9534f; border-radius: 6px; padding: 4px 12px; }
/* Gradio's container hides its overflow, which makes it the sticky bar's scroll box (one that never
   scrolls); clip still cuts the overflow but lets the bar stick to the window. */
.gradio-container { overflow: clip !important; }
#section-nav { position: sticky; top: 0; z-index: 50; background: var(--background-fill-primary);
               padding: 6px 0; border-bottom: 1px solid var(--border-color-primary); }
.studio-nav { display: flex; flex-wrap: wrap; gap: 6px 14px; font-weight: 600; }
.studio-nav a { text-decoration: none; padding: 2px 8px; border-radius: 6px;
                border: 1px solid var(--border-color-primary); }
.studio-section { scroll-margin-top: 56px; border-top: 1px solid var(--border-color-primary); padding-top: 8px; }
.step-status { min-height: 1.4em; font-size: 0.95em; }
.step-status p { margin: 2px 0; overflow-wrap: anywhere; }
.reward-badge { font-weight: 600; margin-top: -6px; }
/* Buttons look like buttons: secondary ones get a visible edge and a raised fill. */
button.secondary { border: 1px solid var(--button-secondary-border-color, #c8c8d0) !important;
                   box-shadow: 0 1px 2px rgba(0, 0, 0, 0.12); }
#players .player { min-width: 0 !important; }
#history-cards td, #history-cards th { white-space: normal !important; overflow-wrap: anywhere; }
#history-cards img { max-height: 96px; width: auto; }
@media (max-width: 640px) {
  /* A phone compares the two videos on one screen: the players stay side by side, half width each. */
  #players { flex-wrap: nowrap !important; gap: 4px !important; }
  #players .player { flex: 1 1 50% !important; }
  #players video, #players img { max-height: 200px; }
  .studio-nav { gap: 4px 8px; font-size: 0.9em; }
  h1 { font-size: 1.3em !important; }
}
"""

# Keeps the two result videos in step: play, pause and seek on one are mirrored on the other.
SYNC_JS = """
<script>
(() => {
  const pair = () => ['video-finetuned', 'video-zeroshot'].map(id => document.querySelector('#' + id + ' video'));
  const bind = () => {
    const [a, b] = pair();
    if (!a || !b || a.dataset.synced === a.currentSrc + '|' + b.currentSrc) return;
    a.dataset.synced = a.currentSrc + '|' + b.currentSrc;
    let busy = false;
    const mirror = (src, dst) => {
      src.onplay = () => { if (busy) return; busy = true; dst.currentTime = src.currentTime; dst.play().catch(() => {}); busy = false; };
      src.onpause = () => { if (busy) return; busy = true; dst.pause(); busy = false; };
      src.onseeked = () => { if (busy) return; busy = true; if (Math.abs(dst.currentTime - src.currentTime) > 0.05) dst.currentTime = src.currentTime; busy = false; };
    };
    mirror(a, b); mirror(b, a);
  };
  setInterval(bind, 800);
  // The reference player's own type check refuses a non-video with a toast, while this section's
  // last status stays beside it. Stop such a file first (drop or file picker), reset the player's
  // drag highlight with an empty drop, and let the server word the refusal in the status line.
  const refuse = (event, files) => {
    const wrong = Array.from(files || []).filter(f => !f.type.startsWith('video/'));
    if (!wrong.length) return false;
    event.preventDefault();
    event.stopPropagation();
    window.studioRefusedUpload = wrong.map(f => f.name).join(', ');
    document.querySelector('#refused-upload')?.click();
    return true;
  };
  document.addEventListener('drop', event => {
    if (event.studioReset || !event.target.closest?.('#reference-clip')) return;
    if (refuse(event, event.dataTransfer?.files)) {
      const reset = new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: new DataTransfer()});
      reset.studioReset = true;
      event.target.dispatchEvent(reset);
    }
  }, true);
  document.addEventListener('change', event => {
    const input = event.target;
    if (input.matches?.('#reference-clip input[type=file]') && refuse(event, input.files)) input.value = '';
  }, true);
})();
</script>
"""
