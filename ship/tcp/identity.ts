/**
 * TLS identities on the ship link (README.md): which names a certificate gives its holder, and the refusal
 * reasons both ends log when a peer's certificate or claimed site does not fit. Pure: no I/O.
 */
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { TlsMaterial } from './certs.ts';

/** TLS material, or 'plaintext' for a link without TLS (tests, or inside a tunnel). */
export type LinkSecurity = TlsMaterial | 'plaintext';

/** Defaults shared by both ends. */
export const DEFAULT_HEARTBEAT_MS = 1000;
export const DEFAULT_PORT = 7400;

/** Names a certificate gives its holder: CN and DNS subjectAltNames, lower-cased, without duplicates. */
export function certificateNames(cert: PeerCertificate | X509Certificate | null | undefined): string[] {
  if (!cert) return [];
  let cn: string | undefined;
  let san: string | undefined;
  if (cert instanceof X509Certificate) {
    cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
    san = cert.subjectAltName;
  } else {
    const c = cert.subject?.CN;
    cn = Array.isArray(c) ? c[0] : c;
    san = cert.subjectaltname;
  }
  const names = new Set<string>();
  if (cn) names.add(cn.toLowerCase());
  for (const item of (san ?? '').split(', ')) if (item.startsWith('DNS:')) names.add(item.slice(4).toLowerCase());
  return [...names];
}

function issuerName(cert: PeerCertificate): string {
  const c = cert.issuer?.CN;
  return (Array.isArray(c) ? c[0] : c) ?? '?';
}

/**
 * Why the receiver refuses a client's TLS identity, or null when the certificate chains to its CA. Called on
 * 'secureConnection' before any byte of the connection is read.
 */
export function clientRefusal(sock: TLSSocket): string | null {
  if (sock.authorized) return null;
  const cert = sock.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) {
    return 'no client certificate: the shipper must present its site certificate (tidemark certs)';
  }
  const code = String(sock.authorizationError ?? 'unknown');
  const who = `subject "${certificateNames(cert).join(', ') || '?'}", issuer "${issuerName(cert)}"`;
  switch (code) {
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'CERT_SIGNATURE_FAILURE':
      return `unknown CA: the client certificate (${who}) was not issued by this receiver's CA (${code})`;
    case 'CERT_HAS_EXPIRED':
      return `the client certificate (${who}) has expired (valid until ${cert.valid_to})`;
    case 'CERT_NOT_YET_VALID':
      return `the client certificate (${who}) is not valid yet (from ${cert.valid_from}; check the clocks)`;
    default:
      return `the client certificate (${who}) was refused: ${code}`;
  }
}

/** Why a HELLO's site does not match the client certificate, or null when the certificate names it. */
export function siteRefusal(site: string, sock: TLSSocket | null): string | null {
  if (!sock) return null;
  const names = certificateNames(sock.getPeerCertificate());
  if (names.includes(site.toLowerCase())) return null;
  return `wrong site name: HELLO says site "${site}" but the client certificate names ${names.map((n) => `"${n}"`).join(', ') || 'no site'}`;
}

/**
 * checkServerIdentity for the shipper: the receiver's certificate must name `site` (CN or DNS SAN), whatever
 * host or address was dialled.
 */
export function serverIdentityCheck(site: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const names = certificateNames(cert);
    if (names.includes(site.toLowerCase())) return undefined;
    const err = new Error(
      `wrong site: the receiver's certificate names ${names.map((n) => `"${n}"`).join(', ') || 'nothing'}, ` +
        `not the site "${site}" this shipper ships to`,
    );
    (err as NodeJS.ErrnoException).code = 'ERR_SHIP_WRONG_SITE';
    return err;
  };
}

/** A readable reason for a failed TLS handshake as the shipper sees it (codes from Node/OpenSSL). */
export function handshakeRefusal(err: NodeJS.ErrnoException): { reason: string; fatal: boolean } {
  const code = err.code ?? '';
  if (code === 'ERR_SHIP_WRONG_SITE') return { reason: err.message, fatal: true };
  if (
    /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED_CERT|DEPTH_ZERO_SELF_SIGNED_CERT/.test(code)
  ) {
    return { reason: `unknown CA: the receiver's certificate was not issued by our CA (${code})`, fatal: true };
  }
  if (/CERT_HAS_EXPIRED|CERT_NOT_YET_VALID/.test(code)) {
    return { reason: `the receiver's certificate is out of its validity period (${code})`, fatal: true };
  }
  if (/ALERT_UNKNOWN_CA|ALERT_BAD_CERTIFICATE|ALERT_CERTIFICATE_REQUIRED/.test(code)) {
    return { reason: `the receiver refused our certificate (${code})`, fatal: true };
  }
  return { reason: err.message, fatal: false };
}
