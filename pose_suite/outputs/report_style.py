"""The one style sheet and the one script of ``report.html``: fixed text,
allowed by the page's Content-Security-Policy through their SHA-256
(:mod:`pose_suite.outputs.report`), so that no other script or style can
run there. Colour marks only what needs attention: failures, and frames lost or
damaged."""

STYLE = """
body { font: 13px system-ui, sans-serif; margin: 1em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th { cursor: pointer; background: #eee; position: sticky; top: 0; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 6px; text-align: left;
  vertical-align: top; }
td { white-space: nowrap; }
td.pictures, td.text { white-space: normal; }
th.sorted-up::after { content: " \\25B2"; }
th.sorted-down::after { content: " \\25BC"; }
td.pictures { width: 340px; }
td.pictures img { display: block; cursor: zoom-in; margin-bottom: 2px; }
td.pictures img.thumbnail { max-width: 160px; max-height: 120px; }
td.pictures img.plot { width: 340px; }
td.pictures .note { color: #555; max-width: 340px; margin-bottom: 4px; }
tr.failed { background: #fdd; }
.attention, .reason.failed { color: #a00; }
.reason.done, .reason.up-to-date { color: #a50; }
.reason { color: #555; max-width: 24em; overflow-wrap: anywhere; }
.path { overflow-wrap: anywhere; }
.links { margin-top: 2px; }
#settings { display: grid; grid-template-columns: max-content auto;
  gap: 1px 1em; margin: 0.3em 0 1em; }
#settings dt { color: #555; } #settings dd { margin: 0; }
#lightbox { position: fixed; inset: 0; background: rgba(0, 0, 0, 0.8);
  display: flex; align-items: center; justify-content: center;
  cursor: zoom-out; }
#lightbox[hidden] { display: none; }
#lightbox img { width: min(90vw, 1200px); max-height: 90vh;
  object-fit: contain; background: #fff; }
"""

SCRIPT = """
// Pictures are decoded when scrolled into view.
const show = image => { image.src = image.dataset.src; };
const watcher = 'IntersectionObserver' in window ? new IntersectionObserver(
  entries => entries.forEach(entry => { if (entry.isIntersecting) {
    show(entry.target); watcher.unobserve(entry.target); } }),
  { rootMargin: '400px' }) : null;
document.querySelectorAll('img[data-src]').forEach(
  image => watcher ? watcher.observe(image) : show(image));
// A click on a picture shows it large (its own large picture where it has
// one); a click or Escape closes it.
const lightbox = document.getElementById('lightbox');
document.querySelectorAll('td.pictures img').forEach(image =>
  image.addEventListener('click', () => {
    lightbox.querySelector('img').src = image.dataset.full ||
      image.dataset.src;
    lightbox.hidden = false; }));
lightbox.addEventListener('click', () => { lightbox.hidden = true; });
document.addEventListener('keydown', event => {
  if (event.key === 'Escape') lightbox.hidden = true; });
// Click a heading to sort by it; again to reverse.
document.querySelectorAll('th[data-column]').forEach(heading =>
  heading.addEventListener('click', () => {
    const column = Number(heading.dataset.column);
    const up = !heading.classList.contains('sorted-up');
    document.querySelectorAll('th').forEach(
      th => th.classList.remove('sorted-up', 'sorted-down'));
    heading.classList.add(up ? 'sorted-up' : 'sorted-down');
    const body = document.querySelector('#results tbody');
    const key = row => JSON.parse(row.cells[column].dataset.sort);
    const rows = Array.from(body.rows).sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      const order = typeof x === 'number' && typeof y === 'number' ? x - y
        : String(x).localeCompare(String(y));
      return up ? order : -order; });
    rows.forEach(row => body.appendChild(row));
  }));
"""
