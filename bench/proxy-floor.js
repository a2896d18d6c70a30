// The floor of bench/proxy.js: a bare node:http forwarder in its own process, doing only what any
// proxy must (read the request, send it on over a kept-alive connection with a bearer header, send
// the answer back), none of agentvault's checks. What the proxy costs above this is agentvault's;
// what this costs is what this machine charges any Node proxy. Prints its port, serves until killed.
import {Agent, createServer, request} from 'node:http'

const agent = new Agent({keepAlive: true})
const server = createServer((incoming, response) => {
  incoming.resume()
  const target = new URL(String(incoming.headers['x-as-target-url']))
  const outgoing = request(
    {
      agent,
      headers: {authorization: 'Bearer floor', 'x-request-id': incoming.headers['x-request-id']},
      host: target.hostname,
      path: `${target.pathname}${target.search}`,
      port: target.port,
    },
    (answer) => {
      const chunks = []
      answer.on('data', (chunk) => chunks.push(chunk))
      answer.on('end', () => {
        const body = Buffer.concat(chunks)
        response.writeHead(answer.statusCode, {
          'content-length': body.length,
          'content-type': answer.headers['content-type'],
        })
        response.end(body)
      })
    },
  )
  outgoing.once('error', () => {
    response.writeHead(502).end()
  })
  outgoing.end()
})
server.listen(0, '127.0.0.1', () => {
  console.log(server.address().port)
})
