// Small helpers shared by the player and host pages.

/** The line shown while the socket is not usable ('' when all is well). */
export function connectionText(state) {
  switch (state) {
    case 'connecting': return 'Connecting…';
    case 'reconnecting': return 'Connection lost: reconnecting…';
    case 'closed': return 'Disconnected. Reload the page to play again.';
    default: return '';
  }
}

/** GET /api/games → the list, or throws an Error with a message for a person. */
export async function fetchGames() {
  const res = await fetch('/api/games', { headers: { accept: 'application/json' }, cache: 'no-store' });
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) {
    const why = body?.message ?? `the server answered ${res.status}`;
    throw new Error(`Could not load the list of games: ${why}`);
  }
  return Array.isArray(body?.games) ? body.games : [];
}
