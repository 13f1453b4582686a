// Sends one message with the official node-mailjet client to tsubame's plain-HTTP listener.
// node-mailjet always builds https:// URLs; its `proxy` option (axios) sends the request
// in plain HTTP to the listener instead, which routes it by its path.
// Usage: node mailjet_send.js HOST:PORT API_KEY SECRET_KEY JSON_BODY
// Prints {"status": ..., "body": ...} as JSON.
const Mailjet = require('node-mailjet');

const [listener, apiKey, apiSecret, body] = process.argv.slice(2);
const [host, port] = listener.split(':');
const mailjet = new Mailjet({
  apiKey,
  apiSecret,
  options: { proxy: { protocol: 'http', host, port: Number(port) }, timeout: 10000 },
});

mailjet
  .post('send', { version: 'v3.1' })
  .request(JSON.parse(body))
  .then((result) => {
    console.log(JSON.stringify({ status: result.response.status, body: result.body }));
  })
  .catch((err) => {
    console.log(JSON.stringify({ status: err.statusCode || null, body: err.response ? err.response.data : String(err) }));
  });
