// The WebSocket implementation handed to client libraries in the client tests: `ws` (Node 20 has no
// global WebSocket), recording the URL of every connection a library opens, so a test can show that
// the library talked to our relay and nothing else.
import WebSocket from 'ws'

/** A `ws` WebSocket class that records every URL it connects to, and those URLs in order. */
export interface WebSocketRecorder {
  WebSocket: new (address: string | URL, protocols?: string | string[]) => WebSocket
  urls: string[]
}

/** A fresh recorder: give `recorder.WebSocket` to the library, read `recorder.urls` afterwards. */
export const recordWebSockets = (): WebSocketRecorder => {
  const urls: string[] = []
  class RecordingWebSocket extends WebSocket {
    constructor(address: string | URL, protocols?: string | string[], options?: WebSocket.ClientOptions) {
      urls.push(String(address))
      super(address, protocols, options)
    }
  }
  return { WebSocket: RecordingWebSocket, urls }
}
