// Small HTTP helpers over fetch for the tests.

export interface JsonResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export async function request<T = unknown>(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse<T>> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['Content-Type'] ??= 'application/json';
  }
  const res = await fetch(`${baseUrl}${path}`, init);
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

export async function createSession(baseUrl: string, config: unknown = {}): Promise<string> {
  const res = await request<{ token: string }>(baseUrl, 'POST', '/api/sessions', config);
  if (res.status !== 200) throw new Error(`create failed: ${res.status} ${res.text}`);
  return res.body.token;
}

export interface WaveEvent {
  type: string;
  data: unknown;
  number: number;
}

export async function pushEvent(baseUrl: string, token: string, type: string, data: unknown) {
  return request<WaveEvent>(baseUrl, 'POST', `/api/sessions/${token}/events`, { type, data });
}

export async function poll(baseUrl: string, token: string, query = '', signal?: AbortSignal) {
  const res = await fetch(`${baseUrl}/api/sessions/${token}/events${query}`, signal ? { signal } : {});
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: JSON.parse(text) as WaveEvent[] };
}
