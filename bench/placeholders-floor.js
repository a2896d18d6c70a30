// The floor of bench/placeholders.js: a bare intercepting HTTPS proxy in its own process, doing only
// what any such proxy must (accept CONNECT, terminate TLS with a leaf certificate, parse the request,
// send it on over a kept-alive verified TLS connection, send the answer back), none of agentvault's
// checks, substitutions or rewriting. What `run --placeholders` costs above this is agentvault's;
// what this costs is what this machine charges any Node proxy of the kind (cold and warm alike).
// argv: the leaf's certificate and key files (PEM, for 127.0.0.1), the upstream's CA file.
// Prints its port, serves until killed.
import {readFileSync} from 'node:fs'
import {createServer} from 'node:http'
import {Agent, request} from 'node:https'
import {createSecureContext, TLSSocket} from 'node:tls'

const [certFile, keyFile, upstreamCa] = process.argv.slice(2)
const secureContext = createSecureContext({cert: readFileSync(certFile), key: readFileSync(keyFile)})
const agent = new Agent({ca: readFileSync(upstreamCa), keepAlive: true})

const inner = createServer((incoming, response) => {
  const [hostname, port] = String(incoming.socket.target).split(':')
  const chunks = []
  incoming.on('data', (chunk) => chunks.push(chunk))
  incoming.on('end', () => {
    const outgoing = request(
      {
        agent,
        headers: incoming.headers,
        hostname,
        method: incoming.method,
        path: incoming.url,
        port,
        servername: '',
      },
      (answer) => {
        response.writeHead(answer.statusCode, answer.headers)
        answer.pipe(response)
      },
    )
    outgoing.once('error', () => response.writeHead(502).end())
    outgoing.end(Buffer.concat(chunks))
  })
})

const server = createServer((_incoming, response) => response.writeHead(405).end())
server.on('connect', (connect, socket, head) => {
  socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
  if (head.length > 0) socket.unshift(head)
  const secure = new TLSSocket(socket, {ALPNProtocols: ['http/1.1'], isServer: true, secureContext})
  secure.target = connect.url
  secure.on('error', () => secure.destroy())
  inner.emit('connection', secure)
})
// The bench stops it with SIGTERM: exit normally, so that Node writes what --cpu-prof asked for.
process.once('SIGTERM', () => process.exit(0))
server.listen(0, '127.0.0.1', () => {
  console.log(server.address().port)
})
