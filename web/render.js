// render.js: draws a game's view (the screen vocabulary of docs/lua-api.md,
// section 11) into the page. No framework, and no HTML from data: every
// string from a game or a player goes in through textContent.
//
//   const r = createRenderer(element, { onAction, announce, me, slots, showQuestion });
//   r.update(view);      // after every welcome / view frame
//   r.destroy();
//
// Sections are created once, in the documented order, and updated in place,
// so focus, a half-typed message and the scroll position of the chat survive
// updates. Unchanged keys (same object after a merge patch) are skipped.
//
// What a student is doing on a question (the picks of a `select`, where a
// `slider` is, the order being arranged) is kept here, keyed on the
// question (its title, text and the labels it offers): a patch that changes
// only `status` or `timer` leaves it alone; a new question starts afresh.

/** The vocabulary, in drawing order. */
export const KEYS = [
  'title', 'image', 'text', 'banner', 'timer', 'status', 'choices', 'select',
  'slider', 'order', 'input', 'bars', 'cloud', 'messages', 'podium',
  'leaderboard', 'score', 'players', 'buttons',
];

const SHAPES = ['▲', '◆', '●', '■', '★', '⬟'];
const STYLES = new Set(['selected', 'correct', 'wrong', 'disabled']);
const STYLE_WORDS = {
  selected: 'your answer',
  correct: 'correct answer',
  wrong: 'wrong',
};
const CONFIRM_MS = 4000;

const CLOUD_SIZES = 5;

const isText = (v) => (typeof v === 'string' && v !== '') || typeof v === 'number';
const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
/** What each key must be to be drawn: a key of the wrong type is skipped. */
const KINDS = {
  title: isText, image: (v) => typeof v === 'string', text: isText, banner: isObject,
  timer: isObject, status: isText, choices: Array.isArray, select: isObject,
  slider: isObject, order: isObject, input: isObject, bars: Array.isArray,
  cloud: Array.isArray, messages: Array.isArray, podium: Array.isArray, leaderboard: Array.isArray,
  score: isText, players: Array.isArray, buttons: Array.isArray,
};
const CLEARED_WHEN_HIDDEN = new Set([
  'title', 'text', 'banner', 'status', 'select', 'slider', 'order', 'bars', 'cloud',
  'podium', 'leaderboard',
]);
/** Other keys a section is drawn from: it is redrawn when they change too. */
const DEPENDS = {
  image: ['image_alt'],
  players: ['kick', 'rename'],
  choices: ['select', 'title', 'text'],
  select: ['choices', 'title', 'text'],
  slider: ['title', 'text'],
  order: ['title', 'text'],
};

/** A string for display: numbers and strings as they are, anything else empty. */
export function str(v) {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return '';
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

function setText(e, text) {
  if (e.textContent !== text) e.textContent = text;
}

/** Only http(s), same-site paths and inline images may be shown. */
export function safeImageUrl(url) {
  if (typeof url !== 'string' || url === '') return null;
  try {
    const u = new URL(url, location.href);
    if (u.protocol === 'http:' || u.protocol === 'https:') return u.href;
    if (u.protocol === 'data:' && /^data:image\/(png|gif|jpeg|webp|svg\+xml)[;,]/i.test(url)) return url;
  } catch { /* not a URL */ }
  return null;
}

function styleOf(button) {
  return STYLES.has(button?.style) ? button.style : null;
}

function pressable(button) {
  return typeof button?.action === 'string' && button.action !== '' && styleOf(button) !== 'disabled';
}

/** With `select`: a choice the student can pick (not their answer already, not greyed). */
function pickable(button) {
  return pressable(button) && styleOf(button) !== 'selected';
}

/** An action name, or null. */
function actionOf(v) {
  return typeof v?.action === 'string' && v.action !== '' ? v.action : null;
}

/** What identifies the question a piece of local state belongs to. */
function questionKey(view, ...more) {
  return JSON.stringify([str(view.title), str(view.text), ...more]);
}

/** A number for display, without floating-point noise (0.30000000000000004 → 0.3). */
function formatNumber(n) {
  return String(Number(n.toPrecision(12)));
}

// Whole seconds as days, hours, minutes and seconds.
function splitSecs(secs) {
  return {
    d: Math.floor(secs / 86400),
    h: Math.floor((secs % 86400) / 3600),
    m: Math.floor((secs % 3600) / 60),
    s: secs % 60,
  };
}

// Time left on a timer: seconds up to 99, then 4:05, 1:04:05, 2 d 01:04:05.
function formatLeft(secs) {
  if (secs < 100) return String(secs);
  const two = (n) => String(n).padStart(2, '0');
  const { d, h, m, s } = splitSecs(secs);
  if (d > 0) return `${d} d ${two(h)}:${two(m)}:${two(s)}`;
  if (h > 0) return `${h}:${two(m)}:${two(s)}`;
  return `${m}:${two(s)}`;
}

// The same, for a screen reader: "2 days 1 hour", "5 minutes".
function spokenLeft(secs) {
  const unit = (n, one) => `${n} ${one}${n === 1 ? '' : 's'}`;
  if (secs < 100) return unit(secs, 'second');
  const { d, h, m } = splitSecs(secs);
  if (d > 0) return h > 0 ? `${unit(d, 'day')} ${unit(h, 'hour')}` : unit(d, 'day');
  if (h > 0) return m > 0 ? `${unit(h, 'hour')} ${unit(m, 'minute')}` : unit(h, 'hour');
  return unit(m, 'minute');
}

// When a long timer ends, in the viewer's own time: "Fri 11 Dec, 18:00".
function formatUntil(ms) {
  try {
    return new Date(ms).toLocaleString([], {
      weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit',
    });
  } catch {
    return '';
  }
}

function formatTime(ms) {
  if (typeof ms !== 'number') return '';
  try {
    return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  } catch {
    return '';
  }
}

/**
 * @param {HTMLElement} root
 * @param {object} options
 * @param {(name: string, data: any) => Promise<any>|void} options.onAction  sends an action
 * @param {(text: string) => void} [options.announce]  speaks a line to screen readers
 * @param {string} [options.me]        the viewer's player id (no remove button by them)
 * @param {object} [options.slots]     key → element to draw that key into instead of root
 * @param {boolean} [options.showQuestion] false hides `text` and `image` while `choices` are shown
 * @param {number} [options.headingLevel] 1 (default) or 2 for `title`
 */
export function createRenderer(root, options = {}) {
  const opts = { showQuestion: true, headingLevel: 1, slots: {}, ...options };
  const announce = opts.announce ?? (() => {});
  const sections = {};
  let last = {};
  let timerTick = null;
  let timerState = null;
  // The student's work on the current question: `select` picks, where the
  // `slider` is, the `order` being arranged. Each is {key, ...}: kept while
  // the question (questionKey) stays the same.
  const local = { picks: null, slider: null, order: null };

  for (const key of KEYS) {
    const parent = opts.slots[key] ?? root;
    const section = el(key === 'title' ? `h${opts.headingLevel}` : 'div', {
      class: `v-${key}`,
      hidden: true,
      'data-key': key,
    });
    parent.append(section);
    sections[key] = section;
  }

  // ---- announcements ---------------------------------------------------------

  function announceChanges(view, prev) {
    const lines = [];
    const questionVisible = opts.showQuestion || !Array.isArray(view.choices);
    const textChanged = view.text !== prev.text && questionVisible;
    if (view.title !== prev.title || textChanged) {
      const parts = [str(view.title)];
      if (questionVisible) parts.push(str(view.text));
      const line = parts.filter(Boolean).join('. ');
      if (line) lines.push(line);
    }
    if (view.banner !== prev.banner && str(view.banner?.text) &&
        str(view.banner?.text) !== str(prev.banner?.text)) {
      lines.push(str(view.banner.text));
    }
    if (lines.length) announce(lines.join('. '));
  }

  // ---- sections ------------------------------------------------------------------

  const draw = {
    title(e, v) {
      setText(e, str(v));
    },

    image(e, v) {
      const url = safeImageUrl(v);
      if (!url) {
        e.hidden = true;
        return;
      }
      let img = e.querySelector('img');
      if (!img) {
        img = el('img', { alt: '', decoding: 'async' });
        e.append(img);
      }
      if (img.getAttribute('src') !== url) img.src = url;
      img.alt = str(currentView.image_alt);
    },

    text(e, v) {
      setText(e, str(v));
    },

    banner(e, v) {
      const text = str(v?.text);
      if (!text) {
        e.hidden = true;
        return;
      }
      e.className = `v-banner${STYLES.has(v.style) ? ` is-${v.style}` : ''}`;
      const icon = v.style === 'correct' ? '✓ ' : v.style === 'wrong' ? '✗ ' : '';
      setText(e, icon + text);
    },

    timer(e, v) {
      const endsAt = Number(v?.ends_at);
      if (!Number.isFinite(endsAt)) {
        e.hidden = true;
        stopTimer();
        return;
      }
      if (!e.firstChild) {
        e.setAttribute('role', 'timer');
        e.append(
          el('span', { class: 'timer-label' }),
          el('span', { class: 'timer-seconds' }),
          el('span', { class: 'timer-until' }),
          el('span', { class: 'timer-bar', 'aria-hidden': 'true' }, el('span', { class: 'timer-fill' })),
        );
      }
      const label = str(v.label) || 'Time left';
      setText(e.querySelector('.timer-label'), label);
      if (!timerState || timerState.endsAt !== endsAt) {
        const total = Math.max(1000, endsAt - Date.now());
        timerState = { endsAt, total, spoken: new Set() };
        const secs = Math.ceil(total / 1000);
        // A timer of more than an hour (a homework deadline) also says when
        // it ends, in the viewer's own time zone.
        const until = e.querySelector('.timer-until');
        until.hidden = secs <= 3600;
        setText(until, secs > 3600 ? `until ${formatUntil(endsAt)}` : '');
        if (endsAt > Date.now()) {
          timerState.spoken.add('start');
          announce(secs < 100 ? `${secs} seconds to answer` : `${label}: ${spokenLeft(secs)}`);
        }
      }
      tickTimer();
      if (!timerTick) timerTick = setInterval(tickTimer, 250);
    },

    status(e, v) {
      setText(e, str(v));
    },

    choices(e, list) {
      drawChoices(e, Array.isArray(list) ? list : []);
    },

    select(e, v) {
      drawSelect(e, v);
    },

    slider(e, v) {
      drawSlider(e, v);
    },

    order(e, v) {
      drawOrder(e, v);
    },

    input(e, v) {
      drawInput(e, v);
    },

    bars(e, list) {
      drawBars(e, Array.isArray(list) ? list : []);
    },

    cloud(e, list) {
      drawCloud(e, Array.isArray(list) ? list : []);
    },

    messages(e, list) {
      drawMessages(e, Array.isArray(list) ? list : []);
    },

    podium(e, list) {
      drawPodium(e, Array.isArray(list) ? list.slice(0, 3) : []);
    },

    leaderboard(e, list) {
      drawLeaderboard(e, Array.isArray(list) ? list : []);
    },

    score(e, v) {
      if (!e.firstChild) {
        e.append(el('span', { class: 'score-label', text: 'Score' }), el('span', { class: 'score-value' }));
      }
      setText(e.querySelector('.score-value'), str(v));
    },

    players(e, list) {
      drawPlayers(e, Array.isArray(list) ? list : []);
    },

    buttons(e, list) {
      drawButtons(e, Array.isArray(list) ? list : []);
    },
  };

  // ---- timer ------------------------------------------------------------------------

  function tickTimer() {
    const e = sections.timer;
    if (!timerState || e.hidden) return;
    const left = timerState.endsAt - Date.now();
    const secs = Math.max(0, Math.ceil(left / 1000));
    setText(e.querySelector('.timer-seconds'), formatLeft(secs));
    const fill = e.querySelector('.timer-fill');
    const ratio = Math.max(0, Math.min(1, left / timerState.total));
    fill.style.transform = `scaleX(${ratio})`;
    e.classList.toggle('is-urgent', secs <= 5 && secs > 0);
    e.classList.toggle('is-over', secs === 0);
    // Spoken at a few moments only, never every second.
    if (secs === 10 && timerState.total > 15000 && !timerState.spoken.has(10)) {
      timerState.spoken.add(10);
      announce('10 seconds left');
    }
    if (secs === 0 && !timerState.spoken.has(0)) {
      timerState.spoken.add(0);
      if (timerState.spoken.has('start')) announce('Time is up');
      clearInterval(timerTick);
      timerTick = null;
    }
  }

  function stopTimer() {
    clearInterval(timerTick);
    timerTick = null;
    timerState = null;
  }

  // ---- buttons --------------------------------------------------------------------------

  /** Sends a button's action; the button waits (aria-busy) until the game answers. */
  function press(button, spec) {
    if (button.getAttribute('aria-busy') === 'true') return;
    const result = opts.onAction?.(spec.action, spec.data);
    if (result && typeof result.then === 'function') {
      button.setAttribute('aria-busy', 'true');
      const done = () => button.removeAttribute('aria-busy');
      result.then(done, done);
    }
  }

  /**
   * `mode`: "press" (a button sending its action), "toggle" (a choice of a
   * `select`, `picked` or not) or "still" (shown, not pressable: the other
   * choices while a `select` is on).
   */
  function fillButton(b, spec, index, withShape, mode = 'press', picked = false) {
    const style = styleOf(spec);
    const label = str(spec?.label);
    const detail = str(spec?.detail);
    b.className = `${withShape ? 'choice' : 'control'}${style ? ` is-${style}` : ''}${withShape ? ` c${(index % 6) + 1}` : ''}`;
    b._spec = spec;
    b._toggle = mode === 'toggle' ? index : null;
    const can = mode === 'toggle' || (mode === 'press' && pressable(spec));
    b.disabled = !can;
    // A button without an action is information (the host's answer counts):
    // greyed only when the game says "disabled".
    b.classList.toggle('is-info', !can && style !== 'disabled');
    if (mode === 'toggle') {
      b.classList.add('is-toggle');
      b.classList.toggle('is-picked', picked);
      b.setAttribute('aria-pressed', String(picked));
    } else {
      b.removeAttribute('aria-pressed');
    }
    let parts = b._parts;
    if (!parts) {
      parts = {
        shape: withShape ? el('span', { class: 'choice-shape', 'aria-hidden': 'true' }) : null,
        label: el('span', { class: 'btn-label' }),
        detail: el('span', { class: 'btn-detail' }),
        state: el('span', { class: 'btn-state' }),
        check: withShape ? el('span', { class: 'choice-check', 'aria-hidden': 'true' }) : null,
      };
      b._parts = parts;
      const text = el('span', { class: 'btn-text' }, parts.label, parts.detail);
      b.append(...[parts.shape, text, parts.state, parts.check].filter(Boolean));
    }
    if (parts.check) {
      parts.check.hidden = mode !== 'toggle';
      setText(parts.check, mode === 'toggle' && picked ? '✓' : '');
    }
    if (parts.shape) setText(parts.shape, SHAPES[index % SHAPES.length]);
    setText(parts.label, label);
    const word = STYLE_WORDS[style] ?? '';
    setText(parts.state, word ? (style === 'correct' ? '✓' : style === 'wrong' ? '✗' : '✓') : '');
    parts.state.setAttribute('aria-label', word);
    parts.state.hidden = !word;
    if (word) parts.state.setAttribute('role', 'img');
    setText(parts.detail, detail);
    parts.detail.hidden = !detail;
  }

  function drawButtonList(container, list, { withShape, listClass, modeOf = () => ['press', false] }) {
    let ul = container.firstChild;
    if (!ul) {
      ul = el('ul', { class: listClass, role: 'list' });
      container.append(ul);
    }
    ul.dataset.count = String(list.length);
    while (ul.children.length > list.length) ul.lastChild.remove();
    list.forEach((spec, i) => {
      let li = ul.children[i];
      if (!li) {
        const b = el('button', { type: 'button' });
        b.addEventListener('click', () => {
          if (b._toggle !== null) togglePick(b._toggle);
          else if (!b.disabled && pressable(b._spec)) press(b, b._spec);
        });
        li = el('li', {}, b);
        ul.append(li);
      }
      fillButton(li.firstChild, spec, i, withShape, ...modeOf(spec, i));
    });
  }

  function drawChoices(e, list) {
    const select = activeSelect();
    const picked = select ? picks() : null;
    const modeOf = select
      ? (spec, i) => (pickable(spec) ? ['toggle', picked.has(i)] : ['still', false])
      : undefined;
    drawButtonList(e, list, { withShape: true, listClass: 'choice-list', modeOf });
  }

  // ---- select: several choices, then Submit ------------------------------------------

  /** The `select` in force (an action, and choices to pick from), or null. */
  function activeSelect() {
    const s = currentView.select;
    if (!isObject(s) || !actionOf(s)) return null;
    if (!Array.isArray(currentView.choices) || !currentView.choices.some(pickable)) return null;
    return s;
  }

  /** The picks (0-based positions) on the current question. */
  function picks() {
    const choices = Array.isArray(currentView.choices) ? currentView.choices : [];
    const key = questionKey(currentView, choices.map((c) => str(c?.label)));
    if (local.picks?.key !== key) local.picks = { key, set: new Set() };
    return local.picks.set;
  }

  /** The picks that can still be picked, ascending. */
  function pickedList() {
    const set = picks();
    return currentView.choices.flatMap((c, i) => (set.has(i) && pickable(c) ? [i] : []));
  }

  function selectBounds(s) {
    const count = currentView.choices.length;
    const min = isNumber(s.min) ? Math.max(0, Math.ceil(s.min)) : 1;
    const max = isNumber(s.max) ? Math.floor(s.max) : count;
    return { min, max, count };
  }

  function togglePick(i) {
    const s = activeSelect();
    if (!s) return;
    const set = picks();
    if (set.has(i)) {
      set.delete(i);
    } else {
      // One to pick: a new pick replaces the old one.
      if (selectBounds(s).max === 1) set.clear();
      set.add(i);
    }
    drawChoices(sections.choices, currentView.choices);
    drawSelect(sections.select, s);
  }

  function pickHint(n, { min, max, count }) {
    let rule;
    if (min === max) rule = `Pick ${min}`;
    else if (max >= count) rule = min <= 1 ? 'Pick one or more' : `Pick at least ${min}`;
    else rule = `Pick ${min} to ${max}`;
    return `${rule} (${n} picked)`;
  }

  function drawSelect(e) {
    const s = activeSelect();
    if (!s) {
      e.hidden = true;
      return;
    }
    e.hidden = false;
    let parts = e._parts;
    if (!parts || !e.firstChild) {
      parts = {
        hint: el('p', { class: 'select-hint', 'aria-live': 'polite' }),
        submit: el('button', { type: 'button', class: 'submit' }),
      };
      parts.submit.addEventListener('click', () => {
        const sel = activeSelect();
        if (!sel) return;
        const chosen = pickedList();
        const { min, max } = selectBounds(sel);
        if (chosen.length < min || chosen.length > max) return;
        press(parts.submit, { action: sel.action, data: { choices: chosen.map((i) => i + 1) } });
      });
      e._parts = parts;
      e.replaceChildren(parts.hint, parts.submit);
    }
    const bounds = selectBounds(s);
    const n = pickedList().length;
    setText(parts.submit, str(s.label) || 'Submit');
    parts.submit.disabled = n < bounds.min || n > bounds.max;
    setText(parts.hint, pickHint(n, bounds));
    parts.hint.classList.toggle('is-over', n > bounds.max);
  }

  // ---- slider: a number, then Submit ---------------------------------------------------

  function sliderRange(v) {
    if (!isNumber(v?.min) || !isNumber(v?.max) || v.max <= v.min) return null;
    const step = isNumber(v.step) && v.step > 0 ? v.step : 1;
    return { min: v.min, max: v.max, step };
  }

  /** `x` on the nearest step of the range (as the range input itself rounds). */
  function snap(x, r) {
    const steps = Math.floor((r.max - r.min) / r.step + 1e-9);
    const k = Math.max(0, Math.min(steps, Math.round((x - r.min) / r.step)));
    return Number((r.min + k * r.step).toPrecision(12));
  }

  function withUnit(n, unit) {
    if (!unit) return formatNumber(n);
    return `${formatNumber(n)}${/^[%°]/.test(unit) ? '' : ' '}${unit}`;
  }

  function drawSlider(e, v) {
    const r = sliderRange(v);
    if (!r) {
      e.hidden = true;
      return;
    }
    const action = actionOf(v);
    const unit = str(v.unit);
    let p = e._parts;
    if (!p || !e.firstChild) {
      const id = `sl-${Math.random().toString(36).slice(2, 8)}`;
      p = {
        label: el('label', { class: 'sr-only', for: id, text: 'Your answer' }),
        value: el('p', { class: 'slider-value' }),
        less: el('button', { type: 'button', class: 'slider-step', text: '−', 'aria-label': 'Less' }),
        input: el('input', { id, type: 'range' }),
        more: el('button', { type: 'button', class: 'slider-step', text: '+', 'aria-label': 'More' }),
        track: el('div', { class: 'slider-track', 'aria-hidden': 'true' }),
        fill: el('span', { class: 'slider-fill' }),
        mark: el('span', { class: 'slider-mark' }),
        low: el('span', { class: 'slider-end' }),
        high: el('span', { class: 'slider-end' }),
        answer: el('p', { class: 'slider-answer' }),
        submit: el('button', { type: 'button', class: 'submit' }),
      };
      p.row = el('div', { class: 'slider-row' }, p.less, p.input, p.more);
      p.track.append(p.fill, p.mark);
      const ends = el('div', { class: 'slider-ends', 'aria-hidden': 'true' }, p.low, p.high);
      e.replaceChildren(p.label, p.value, p.row, p.track, ends, p.answer, p.submit);
      e._parts = p;
      const moved = () => {
        const n = Number(p.input.value);
        if (local.slider) local.slider.value = n;
        showSliderValue(p, n, str(currentView.slider?.unit));
      };
      p.input.addEventListener('input', moved);
      p.less.addEventListener('click', () => { p.input.stepDown(); moved(); });
      p.more.addEventListener('click', () => { p.input.stepUp(); moved(); });
      p.submit.addEventListener('click', () => {
        const spec = currentView.slider;
        const act = actionOf(spec);
        if (!act || !sliderRange(spec)) return;
        press(p.submit, { action: act, data: { value: Number(p.input.value) } });
      });
    }
    p.input.min = String(r.min);
    p.input.max = String(r.max);
    p.input.step = String(r.step);
    setText(p.low, withUnit(r.min, unit));
    setText(p.high, withUnit(r.max, unit));
    let shown = isNumber(v.value) ? v.value : null;
    if (action) {
      const key = questionKey(currentView, r.min, r.max, r.step, unit);
      if (local.slider?.key !== key) {
        local.slider = { key, value: snap(shown ?? (r.min + r.max) / 2, r) };
      }
      const want = String(local.slider.value);
      if (p.input.value !== want) p.input.value = want;
      shown = Number(p.input.value);
      local.slider.value = shown;
    }
    p.row.hidden = !action;
    p.input.disabled = !action;
    p.submit.hidden = !action;
    setText(p.submit, str(v.label) || 'Submit');
    // The big number repeats what the range says to screen readers.
    if (action) p.value.setAttribute('aria-hidden', 'true');
    else p.value.removeAttribute('aria-hidden');
    showSliderValue(p, shown, unit);
    const at = (x) => Math.max(0, Math.min(1, (x - r.min) / (r.max - r.min)));
    const answer = isNumber(v.answer) ? v.answer : null;
    p.track.hidden = !!action && answer === null;
    p.fill.hidden = !!action || shown === null;
    if (!p.fill.hidden) p.fill.style.transform = `scaleX(${at(shown)})`;
    p.mark.hidden = answer === null;
    if (answer !== null) p.mark.style.left = `${at(answer) * 100}%`;
    setText(p.answer, answer === null ? '' : `Answer: ${withUnit(answer, unit)}`);
    p.answer.hidden = answer === null;
    p.answer.classList.toggle('is-correct', answer !== null && shown !== null && shown === answer);
  }

  function showSliderValue(p, n, unit) {
    p.value.hidden = n === null;
    if (n === null) return;
    const text = withUnit(n, unit);
    setText(p.value, text);
    p.input.setAttribute('aria-valuetext', text);
  }

  // ---- order: put a list in order, then Submit --------------------------------------------

  function drawOrder(e, v) {
    const items = Array.isArray(v?.items) ? v.items : [];
    if (items.length === 0) {
      e.hidden = true;
      return;
    }
    const action = actionOf(v);
    let p = e._parts;
    if (!p || !e.firstChild) {
      p = {
        list: el('ol', { class: 'order-list', role: 'list' }),
        submit: el('button', { type: 'button', class: 'submit' }),
        rows: new Map(),
      };
      p.submit.addEventListener('click', () => {
        if (!actionOf(currentView.order) || !local.order) return;
        press(p.submit, { action: currentView.order.action, data: { order: local.order.perm.map((i) => i + 1) } });
      });
      e.replaceChildren(p.list, p.submit);
      e._parts = p;
    }
    let perm = items.map((_, i) => i);
    if (action) {
      const key = questionKey(currentView, items.map((it) => str(it?.label)));
      if (local.order?.key !== key) local.order = { key, perm };
      perm = local.order.perm;
    }
    p.list.setAttribute('aria-label', action ? 'Your order' : 'Order');
    for (const [i, li] of p.rows) {
      if (i >= items.length) {
        li.remove();
        p.rows.delete(i);
      }
    }
    let prev = null;
    perm.forEach((i, place) => {
      const li = orderRow(p, i);
      fillOrderRow(li, items[i], place, perm.length, action);
      const at = prev ? prev.nextSibling : p.list.firstChild;
      if (at !== li) p.list.insertBefore(li, at);
      prev = li;
    });
    p.submit.hidden = !action;
    setText(p.submit, str(v.label) || 'Submit');
  }

  function orderRow(p, i) {
    let li = p.rows.get(i);
    if (li) return li;
    const parts = {
      place: el('span', { class: 'order-place', 'aria-hidden': 'true' }),
      label: el('span', { class: 'order-label' }),
      detail: el('span', { class: 'order-detail' }),
      state: el('span', { class: 'order-state' }),
      up: el('button', { type: 'button', class: 'order-move', text: '▲' }),
      down: el('button', { type: 'button', class: 'order-move', text: '▼' }),
    };
    parts.moves = el('span', { class: 'order-moves' }, parts.up, parts.down);
    parts.up.addEventListener('click', () => moveItem(i, -1));
    parts.down.addEventListener('click', () => moveItem(i, 1));
    li = el('li', { class: 'order-item' },
      parts.place,
      el('span', { class: 'order-text' }, parts.label, parts.detail),
      parts.state,
      parts.moves,
    );
    li._parts = parts;
    p.rows.set(i, li);
    return li;
  }

  function fillOrderRow(li, item, place, count, action) {
    const parts = li._parts;
    const style = STYLES.has(item?.style) ? item.style : null;
    li.className = `order-item${style ? ` is-${style}` : ''}`;
    const label = str(item?.label);
    setText(parts.place, String(place + 1));
    setText(parts.label, label);
    const detail = str(item?.detail);
    setText(parts.detail, detail);
    parts.detail.hidden = !detail;
    const word = STYLE_WORDS[style] ?? '';
    setText(parts.state, style === 'correct' ? '✓' : style === 'wrong' ? '✗' : '');
    parts.state.hidden = !(style === 'correct' || style === 'wrong');
    if (word) {
      parts.state.setAttribute('role', 'img');
      parts.state.setAttribute('aria-label', word);
    }
    parts.moves.hidden = !action;
    parts.up.disabled = !action || place === 0;
    parts.down.disabled = !action || place === count - 1;
    parts.up.setAttribute('aria-label', `Move ${label} up`);
    parts.down.setAttribute('aria-label', `Move ${label} down`);
  }

  /** Moves item `i` one place up (-1) or down (1); the focus goes with it. */
  function moveItem(i, delta) {
    const spec = currentView.order;
    if (!actionOf(spec) || !local.order) return;
    const perm = local.order.perm;
    const from = perm.indexOf(i);
    const to = from + delta;
    if (from < 0 || to < 0 || to >= perm.length) return;
    [perm[from], perm[to]] = [perm[to], perm[from]];
    drawOrder(sections.order, spec);
    const parts = sections.order._parts.rows.get(i)?._parts;
    if (parts) {
      const same = delta < 0 ? parts.up : parts.down;
      (same.disabled ? (delta < 0 ? parts.down : parts.up) : same).focus();
      announce(`${parts.label.textContent}: place ${to + 1} of ${perm.length}`);
    }
  }

  // ---- bars, cloud ---------------------------------------------------------------------------

  function drawBars(e, list) {
    let ul = e.firstChild;
    if (!ul) {
      ul = el('ul', { class: 'bar-list', role: 'list' });
      e.append(ul);
    }
    const bars = list.filter(isObject);
    const max = bars.reduce((m, b) => (isNumber(b.value) && b.value > m ? b.value : m), 0);
    while (ul.children.length > bars.length) ul.lastChild.remove();
    bars.forEach((b, i) => {
      let li = ul.children[i];
      if (!li) {
        const parts = {
          label: el('span', { class: 'bar-label' }),
          state: el('span', { class: 'bar-state', role: 'img', 'aria-label': STYLE_WORDS.correct, text: '✓' }),
          value: el('span', { class: 'bar-value' }),
          detail: el('span', { class: 'bar-detail' }),
          fill: el('span', { class: 'bar-fill' }),
        };
        li = el('li', { class: 'bar' },
          el('span', { class: 'bar-head' }, parts.label, parts.state, parts.value, parts.detail),
          el('span', { class: 'bar-track', 'aria-hidden': 'true' }, parts.fill),
        );
        li._parts = parts;
        ul.append(li);
      }
      const parts = li._parts;
      const style = styleOf(b);
      const cls = `bar${style ? ` is-${style}` : ''}`;
      if (li.className !== cls) li.className = cls;
      setText(parts.label, str(b.label));
      parts.state.hidden = style !== 'correct';
      setText(parts.value, isNumber(b.value) ? formatNumber(b.value) : '');
      const detail = str(b.detail);
      setText(parts.detail, detail);
      parts.detail.hidden = !detail;
      const ratio = max > 0 && isNumber(b.value) ? Math.max(0, Math.min(1, b.value / max)) : 0;
      if (parts.ratio !== ratio) {
        parts.ratio = ratio;
        parts.fill.style.transform = `scaleX(${ratio})`;
      }
    });
  }

  function drawCloud(e, list) {
    let ul = e.firstChild;
    if (!ul) {
      ul = el('ul', { class: 'cloud-list', role: 'list', 'aria-label': 'Word cloud' });
      e.append(ul);
    }
    const words = list
      .filter((w) => isText(w?.text))
      .map((w) => ({ text: str(w.text), count: isNumber(w.count) && w.count > 0 ? w.count : 0 }));
    const max = words.reduce((m, w) => Math.max(m, w.count), 0);
    while (ul.children.length > words.length) ul.lastChild.remove();
    words.forEach((w, i) => {
      let li = ul.children[i];
      if (!li) {
        li = el('li', {}, el('span', { class: 'cloud-text' }), el('span', { class: 'sr-only' }));
        ul.append(li);
      }
      // Sizes 1 to 5: the most frequent word the biggest.
      const size = max > 0 ? Math.max(1, Math.ceil((CLOUD_SIZES * w.count) / max)) : 1;
      const cls = `cloud-word size-${size} k${(i % 6) + 1}`;
      if (li.className !== cls) li.className = cls;
      setText(li.firstChild, w.text);
      setText(li.lastChild, ` (${formatNumber(w.count)})`);
    });
  }

  function drawButtons(e, list) {
    drawButtonList(e, list, { withShape: false, listClass: 'control-list' });
  }

  // ---- input ------------------------------------------------------------------------------

  function drawInput(e, v) {
    const action = str(v?.action);
    if (!action) {
      e.hidden = true;
      return;
    }
    let form = e.firstChild;
    if (!form) {
      const id = `in-${Math.random().toString(36).slice(2, 8)}`;
      form = el('form', { class: 'input-row', novalidate: true },
        el('label', { for: id, class: 'input-label' }),
        el('input', { id, type: 'text', autocomplete: 'off', enterkeyhint: 'send' }),
        el('button', { type: 'submit', class: 'send', text: 'Send' }),
      );
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        const input = form.querySelector('input');
        const spec = form._spec;
        const text = input.value.trim();
        if (!text || !spec) return;
        const result = opts.onAction?.(spec.action, { text });
        input.value = '';
        if (result && typeof result.then === 'function') {
          result.catch(() => {
            // Give the text back so it is not lost.
            if (!input.value) input.value = text;
          });
        }
      });
      e.append(form);
    }
    form._spec = v;
    const input = form.querySelector('input');
    const label = form.querySelector('label');
    const caption = str(v.label);
    setText(label, caption || 'Message');
    label.classList.toggle('sr-only', !caption);
    input.placeholder = str(v.placeholder);
    const max = Number(v.max);
    if (Number.isFinite(max) && max > 0) input.maxLength = Math.floor(max);
    else input.removeAttribute('maxlength');
  }

  // ---- messages -------------------------------------------------------------------------------

  function messageKey(m) {
    return JSON.stringify([m?.at ?? null, str(m?.from), str(m?.text)]);
  }

  function drawMessages(e, list) {
    let ol = e.firstChild;
    if (!ol) {
      ol = el('ol', { class: 'message-list', role: 'log', 'aria-live': 'polite', 'aria-label': 'Messages', tabindex: '0' });
      e.append(ol);
    }
    const atBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 40;
    const have = [...ol.children].map((li) => li.dataset.key);
    const want = list.map(messageKey);
    // Largest overlap between the end of what is shown and the start of the
    // new list: drop older ones from the top, append newer ones at the bottom.
    let overlap = 0;
    for (let k = Math.min(have.length, want.length); k > 0; k--) {
      let same = true;
      for (let i = 0; i < k; i++) {
        if (have[have.length - k + i] !== want[i]) { same = false; break; }
      }
      if (same) { overlap = k; break; }
    }
    if (overlap === 0) ol.replaceChildren();
    else for (let i = 0; i < have.length - overlap; i++) ol.firstChild.remove();
    for (let i = overlap; i < list.length; i++) {
      const m = list[i];
      const from = str(m?.from);
      const li = el('li', { class: from ? 'message' : 'message is-notice' });
      li.dataset.key = want[i];
      if (from) li.append(el('span', { class: 'message-from', text: from }));
      li.append(el('span', { class: 'message-text', text: str(m?.text) }));
      const at = formatTime(m?.at);
      if (at) li.append(el('time', { class: 'message-at', datetime: new Date(m.at).toISOString(), text: at }));
      ol.append(li);
    }
    if (atBottom || overlap === 0) ol.scrollTop = ol.scrollHeight;
  }

  // ---- podium, leaderboard ---------------------------------------------------------------------

  function drawPodium(e, list) {
    const ol = el('ol', { class: 'podium-list', 'aria-label': 'Podium' });
    list.forEach((p, i) => {
      const rank = Number(p?.rank) || i + 1;
      ol.append(el('li', { class: `podium-place place-${i + 1}` },
        el('span', { class: 'podium-medal', 'aria-hidden': 'true', text: String(rank) }),
        el('span', { class: 'sr-only', text: `${ordinal(rank)}: ` }),
        el('span', { class: 'podium-name', text: str(p?.name) }),
        el('span', { class: 'podium-score', text: `${str(p?.score)} pts` }),
      ));
    });
    e.replaceChildren(ol);
  }

  function drawLeaderboard(e, list) {
    const table = el('table', { class: 'leaderboard-table' },
      el('caption', { class: 'sr-only', text: 'Leaderboard' }),
    );
    const head = el('thead', {}, el('tr', {},
      el('th', { scope: 'col', text: 'Rank' }),
      el('th', { scope: 'col', text: 'Name' }),
      el('th', { scope: 'col', class: 'num', text: 'Score' }),
    ));
    const body = el('tbody');
    list.forEach((r, i) => {
      const me = r?.highlight === true;
      const tr = el('tr', { class: me ? 'is-me' : null, 'aria-current': me ? 'true' : null },
        el('td', { class: 'rank', text: str(r?.rank) || String(i + 1) }),
        el('td', { class: 'name' }, el('span', { text: str(r?.name) }),
          me ? el('span', { class: 'you', text: ' (you)' }) : null),
        el('td', { class: 'num', text: str(r?.score) }),
      );
      body.append(tr);
    });
    table.append(head, body);
    e.replaceChildren(table);
  }

  // ---- players ---------------------------------------------------------------------------------------

  function drawPlayers(e, list) {
    const kick = str(currentView.kick);
    const rename = str(currentView.rename);
    let heading = e.querySelector('h2');
    let ul = e.querySelector('ul');
    if (!heading) {
      heading = el('h2', { class: 'players-heading' });
      ul = el('ul', { class: 'player-list', role: 'list' });
      e.append(heading, ul);
    }
    setText(heading, `Players (${list.length})`);
    const byId = new Map([...ul.children].map((li) => [li.dataset.id, li]));
    const keep = new Set();
    let prev = null;
    for (const p of list) {
      const id = str(p?.id);
      const name = str(p?.name);
      let li = byId.get(id);
      if (!li || keep.has(id)) {
        li = el('li', { class: 'player' },
          el('span', { class: 'player-name' }),
          el('span', { class: 'player-detail' }),
        );
        li.dataset.id = id;
      }
      keep.add(id);
      setText(li.querySelector('.player-name'), name);
      const detail = li.querySelector('.player-detail');
      setText(detail, str(p?.detail));
      detail.hidden = !str(p?.detail);
      let btn = li.querySelector('button.kick');
      const canKick = kick && id && id !== opts.me;
      if (canKick && !btn) {
        btn = el('button', { type: 'button', class: 'kick', text: 'Remove' });
        btn.addEventListener('click', () => confirmKick(btn, li));
        li.append(btn);
      } else if (!canKick && btn) {
        btn.remove();
        btn = null;
      }
      if (btn) {
        btn._kick = kick;
        if (!btn.classList.contains('is-confirming')) btn.setAttribute('aria-label', `Remove ${name}`);
      }
      let renameBtn = li.querySelector('button.rename');
      const canRename = rename && id && id !== opts.me;
      if (canRename && !renameBtn) {
        renameBtn = el('button', { type: 'button', class: 'rename', text: 'Rename' });
        renameBtn.addEventListener('click', () => askRename(renameBtn, li));
        li.insertBefore(renameBtn, btn);
      } else if (!canRename && renameBtn) {
        renameBtn.remove();
        renameBtn = null;
      }
      if (renameBtn) {
        renameBtn._rename = rename;
        renameBtn.setAttribute('aria-label', `Rename ${name}`);
      }
      const at = prev ? prev.nextSibling : ul.firstChild;
      if (at !== li) ul.insertBefore(li, at);
      prev = li;
    }
    for (const [id, li] of byId) if (!keep.has(id)) li.remove();
  }

  /** Two presses to remove someone: "Remove" → "Really remove?" (4 s) → kick. */
  function confirmKick(btn, li) {
    const name = li.querySelector('.player-name').textContent;
    if (btn.classList.contains('is-confirming')) {
      clearTimeout(btn._timer);
      btn.classList.remove('is-confirming');
      setText(btn, 'Remove');
      btn.setAttribute('aria-label', `Remove ${name}`);
      press(btn, { action: btn._kick, data: { player: li.dataset.id } });
      return;
    }
    btn.classList.add('is-confirming');
    setText(btn, 'Really remove?');
    btn.setAttribute('aria-label', `Really remove ${name}? Press again to confirm`);
    btn._timer = setTimeout(() => {
      btn.classList.remove('is-confirming');
      setText(btn, 'Remove');
      btn.setAttribute('aria-label', `Remove ${name}`);
    }, CONFIRM_MS);
  }

  /** Asks for the new name, then sends the rename action with `{player, name}`. */
  function askRename(btn, li) {
    const name = li.querySelector('.player-name').textContent;
    const answer = window.prompt(`New name for ${name}:`, name);
    if (answer === null || answer.trim() === '' || answer.trim() === name) return;
    press(btn, { action: btn._rename, data: { player: li.dataset.id, name: answer.trim() } });
  }

  // ---- update ---------------------------------------------------------------------------------------

  let currentView = {};

  function present(view, key) {
    const v = view[key];
    if (v === undefined || v === null || v === false) return false;
    if (!KINDS[key](v)) return false;
    if (Array.isArray(v) && v.length === 0) return false;
    if (!opts.showQuestion && (key === 'text' || key === 'image') && Array.isArray(view.choices)) return false;
    if (key === 'kick' || key === 'rename') return false;
    return true;
  }

  function update(view, { force = false } = {}) {
    view = view && typeof view === 'object' && !Array.isArray(view) ? view : {};
    const prev = last;
    currentView = view;
    announceChanges(view, prev);
    for (const key of KEYS) {
      const e = sections[key];
      const show = present(view, key);
      const depends = (DEPENDS[key] ?? []).some((k) => view[k] !== prev[k]);
      if (!show) {
        if (!e.hidden) {
          e.hidden = true;
          // Nothing stale stays behind in the page (tools and tests read it).
          if (CLEARED_WHEN_HIDDEN.has(key)) e.textContent = '';
        }
        if (key === 'timer') stopTimer();
        continue;
      }
      const wasHidden = e.hidden;
      e.hidden = false;
      if (force || wasHidden || view[key] !== prev[key] || depends) {
        draw[key](e, view[key]);
      }
    }
    root.dataset.hasChoices = String(Array.isArray(view.choices) && view.choices.length > 0);
    last = view;
  }

  return {
    update,
    /** Redraws everything (after an option changed). */
    setOptions(next) {
      Object.assign(opts, next);
      update(last, { force: true });
    },
    get view() { return last; },
    destroy() {
      stopTimer();
      for (const key of KEYS) sections[key].remove();
    },
  };
}

export function ordinal(n) {
  const v = Math.abs(Math.trunc(n));
  const lastTwo = v % 100;
  if (lastTwo >= 11 && lastTwo <= 13) return `${n}th`;
  return `${n}${({ 1: 'st', 2: 'nd', 3: 'rd' })[v % 10] ?? 'th'}`;
}

/** A polite live region; `say(text)` speaks once even when the text repeats. */
export function createAnnouncer(parent = document.body) {
  const region = el('div', { class: 'sr-only', 'aria-live': 'polite', 'aria-atomic': 'true', id: 'announcer' });
  parent.append(region);
  let pending = null;
  let queue = [];
  return {
    element: region,
    /** Lines said within the same moment are spoken together, in order. */
    say(text) {
      if (!text) return;
      queue.push(text);
      region.textContent = '';
      clearTimeout(pending);
      pending = setTimeout(() => {
        region.textContent = queue.join('. ');
        queue = [];
      }, 60);
    },
  };
}
