// The dashboard's shell: the header with the time zone switch and the API
// key, and hash routing between the overview (#/) and a session's page
// (#/sessions/<token>, or #/sessions/<token>?at=<number> for its report as
// of one event).

import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { readApiKey, saveApiKey } from './api.js';
import { Overview } from './overview.js';
import { SessionPage } from './session.js';
import { readTimeZone, saveTimeZone, TimeZoneContext, TimeZoneSwitch } from './ui.js';
import './styles.css';

type Route = { page: 'overview' } | { page: 'session'; token: string; at: number | null };

function parseRoute(hash: string): Route {
  const match = /^#\/sessions\/([^/?#]+)(?:\?(.*))?/.exec(hash);
  if (match?.[1]) {
    const at = new URLSearchParams(match[2] ?? '').get('at');
    const token = decodeURIComponent(match[1]);
    return { page: 'session', token, at: at !== null && /^\d+$/.test(at) ? Number(at) : null };
  }
  return { page: 'overview' };
}

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => {
      setRoute(parseRoute(location.hash));
      window.scrollTo(0, 0);
    };
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

/** The key goes in sessionStorage; the page reloads so that every request and stream uses it. */
function ApiKey() {
  const [value, setValue] = useState(readApiKey);
  const stored = readApiKey();
  const apply = (key: string) => {
    saveApiKey(key);
    location.reload();
  };
  return (
    <details class="api-key">
      <summary>{stored === '' ? 'API key' : 'API key ✓'}</summary>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          apply(value.trim());
        }}
      >
        <input
          type="password"
          value={value}
          placeholder="only where access control is on"
          autocomplete="off"
          aria-label="API key"
          onInput={(e) => setValue(e.currentTarget.value)}
        />
        <button type="submit">Use</button>
        {stored !== '' && (
          <button type="button" onClick={() => apply('')}>
            Forget
          </button>
        )}
      </form>
    </details>
  );
}

function App() {
  const route = useRoute();
  const [zone, setZone] = useState(readTimeZone);
  useEffect(() => {
    document.title = route.page === 'session' ? `${route.token.slice(0, 8)} · wave-sessions` : 'wave-sessions';
  }, [route]);
  return (
    <TimeZoneContext.Provider value={zone}>
      <header class="topbar">
        <a class="brand" href="#/">
          wave-sessions
        </a>
        <div class="topbar-tools">
          <TimeZoneSwitch
            zone={zone}
            onChange={(z) => {
              saveTimeZone(z);
              setZone(z);
            }}
          />
          <ApiKey />
        </div>
      </header>
      {route.page === 'session' ? (
        <SessionPage key={route.token} token={route.token} initialAt={route.at} />
      ) : (
        <Overview />
      )}
    </TimeZoneContext.Provider>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
