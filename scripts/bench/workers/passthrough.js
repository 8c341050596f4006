// The baseline: a bare passthrough Worker. It forwards the request as it came (method,
// headers, streamed body) to ORIGIN + path + query and returns the origin's response as is.
// Everything the gateway costs is measured against this.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return fetch(env.ORIGIN + url.pathname + url.search, request);
  },
};
