// A round-robin TCP proxy on 127.0.0.1 for benchmarks: each new connection goes to the
// next of the given ports, so clients spread evenly over several StreamChat nodes.
// Usage: node scripts/round-robin-proxy.mjs LISTEN_PORT TARGET_PORT [TARGET_PORT...]
import net from 'node:net';

const [listen, ...targets] = process.argv.slice(2).map(Number);
let next = 0;
net.createServer((client) => {
  const upstream = net.connect(targets[next++ % targets.length], '127.0.0.1');
  client.pipe(upstream).pipe(client);
  const end = () => { client.destroy(); upstream.destroy(); };
  client.on('error', end);
  upstream.on('error', end);
  client.on('close', end);
  upstream.on('close', end);
}).listen(listen, '127.0.0.1');
