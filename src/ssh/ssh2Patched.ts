/**
 * What src/patches/ssh2+1.17.0.patch adds to ssh2, typed. The patch is applied
 * by `npm install`/`npm ci` (patch-package); these are its public additions.
 */
import 'ssh2';

declare module 'ssh2' {
  interface Channel {
    /** The receive window this channel keeps topping up to (2 MiB unless raised). */
    readonly windowLimit: number;
    /** Raises or lowers that window, within 64 KiB and 256 MiB; a raise is granted to the peer at once. */
    setWindowLimit(bytes: number): void;
  }

  interface SFTPWrapper {
    /** As Channel#setWindowLimit, for the SFTP channel. */
    setWindowLimit(bytes: number): void;
  }

  interface Client {
    /** Sends SSH_MSG_IGNORE: nothing for the server to do, but its segment acknowledges what the server sent. */
    sendIgnore(): this;
    /** Each keepalive reply, with its round trip in milliseconds. */
    on(event: 'keepalive', listener: (roundTripMs: number) => void): this;
  }
}
