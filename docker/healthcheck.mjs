// Container health check without curl: exits 0 when the service's /healthz answers 200.
import http from 'node:http';

const port = process.env.HEALTH_PORT || '8080';
// HEALTH_PORT=0 turns the endpoint off; then there is nothing to check.
if (port === '0') process.exit(0);
const request = http.get({ host: '127.0.0.1', port, path: '/healthz', timeout: 3000 }, (response) => {
  response.resume();
  process.exit(response.statusCode === 200 ? 0 : 1);
});
request.on('timeout', () => request.destroy(new Error('timeout')));
request.on('error', () => process.exit(1));
