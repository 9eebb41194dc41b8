// The REST API (gateway/PROTOCOL.md) with the phone's token. Pages get one Api from app.js:
// JSON in and out, errors as ApiError with the server's message, a refused token reported once
// to the app (which shows the pairing screen). Media (clips, recorded audio, export files) comes
// as blobs, since an <audio> element cannot send the Authorization header.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  /** @param {{token: () => string, onUnauthorized: () => void}} options */
  constructor({ token, onUnauthorized }) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  async fetch(path, { method = "GET", body } = {}) {
    const headers = { Authorization: `Bearer ${this.token()}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let r;
    try {
      r = await fetch(path.replace(/^\//, ""), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "unreachable", "The Habla server did not answer. Check the connection and try again.");
    }
    if (r.status === 401) {
      this.onUnauthorized();
      throw new ApiError(401, "unauthorized", "This phone's token was refused.");
    }
    if (!r.ok) {
      let code = "http_" + r.status;
      let message = `The server answered ${r.status}.`;
      try {
        const j = await r.json();
        code = j.error || code;
        message = j.message || message;
      } catch {
        // not JSON: keep the status line
      }
      throw new ApiError(r.status, code, message);
    }
    return r;
  }

  /** JSON of a GET (or of a method with a JSON body). */
  async json(path, options) {
    const r = await this.fetch(path, options);
    return r.json();
  }

  /** Save a term heard in `sessionId` (POST /api/sessions/{id}/terms; gateway/PROTOCOL.md). */
  saveTerm(sessionId, term) {
    return this.json(`api/sessions/${encodeURIComponent(sessionId)}/terms`, { method: "POST", body: term });
  }

  /** An object URL for media at `path` (revoke it with URL.revokeObjectURL when done). */
  async blobUrl(path) {
    const r = await this.fetch(path);
    return URL.createObjectURL(await r.blob());
  }
}
