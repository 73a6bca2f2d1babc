#!/usr/bin/env bash
# A local certificate authority and a server certificate for the edge, made with openssl, once:
#   tls.sh DIR   ->  DIR/ca.crt (trust this one), DIR/ca.key, DIR/server.crt, DIR/server.key
# The server certificate names 127.0.0.1, ::1 and localhost (SAN) plus EDGE_SERVER_NAME if set;
# it is re-issued by the same CA when it expires within 30 days or no longer names a requested
# host, so a client that trusts ca.crt keeps working. Keys are EC P-256 and readable only by you.
set -euo pipefail
DIR="${1:?usage: tls.sh DIR}"
mkdir -p "$DIR"
umask 077
CA_DAYS=3650
SERVER_DAYS=397   # the longest validity browsers accept for a server certificate

names="DNS:localhost,IP:127.0.0.1,IP:0:0:0:0:0:0:0:1"
extra="${EDGE_SERVER_NAME:-}"
if [ -n "$extra" ] && [ "$extra" != localhost ] && [ "$extra" != 127.0.0.1 ]; then
  if [[ "$extra" =~ ^[0-9.]+$ ]]; then names="$names,IP:$extra"; else names="$names,DNS:$extra"; fi
fi

if [ ! -s "$DIR/ca.crt" ] || [ ! -s "$DIR/ca.key" ]; then
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days "$CA_DAYS" \
    -subj "/O=RouteMate local/CN=RouteMate local CA $(hostname -s 2>/dev/null || echo host) $(date +%Y%m%d%H%M%S)" \
    -keyout "$DIR/ca.key" -out "$DIR/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" 2>/dev/null
  rm -f "$DIR/server.crt"
  echo "tls: created a local CA in $DIR/ca.crt"
fi

fresh() {  # the server certificate exists, is not about to expire and names every requested host
  [ -s "$DIR/server.crt" ] && [ -s "$DIR/server.key" ] || return 1
  openssl x509 -in "$DIR/server.crt" -noout -checkend $(( 30 * 86400 )) >/dev/null || return 1
  local have; have="$(openssl x509 -in "$DIR/server.crt" -noout -ext subjectAltName 2>/dev/null | tr -d ' \n')"
  for name in ${names//,/ }; do
    name="${name/IP:0:0:0:0:0:0:0:1/IPAddress:0:0:0:0:0:0:0:1}"; name="${name/IP:/IPAddress:}"
    [[ ",$have," == *",$name,"* || "$have" == *"$name"* ]] || return 1
  done
}

if ! fresh; then
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
    -subj "/O=RouteMate local/CN=localhost" -keyout "$DIR/server.key" -out "$DIR/server.csr" 2>/dev/null
  cat > "$DIR/server.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$names
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid:always
EXT
  openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days "$SERVER_DAYS" -sha256 -extfile "$DIR/server.ext" -out "$DIR/server.crt" 2>/dev/null
  rm -f "$DIR/server.csr" "$DIR/server.ext"
  echo "tls: issued $DIR/server.crt for $names (valid $SERVER_DAYS days)"
fi
chmod 644 "$DIR/ca.crt" "$DIR/server.crt"
