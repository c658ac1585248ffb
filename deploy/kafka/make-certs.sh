#!/bin/sh
# Writes ./tls (or the directory given): a CA, a certificate for the brokers (kafka1-3) and one for
# Nebula's clients, for compose.tls.yaml. For a lab: production certificates
# come from your own CA. Needs openssl.
set -eu
out=${1:-"$(dirname "$0")/tls"}
mkdir -p "$out" && cd "$out"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 -subj "/CN=nebula kafka CA" \
  -keyout ca-key.pem -out ca.pem 2>/dev/null
issue() { # name subject-alt-names extended-key-usage
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" -keyout "$1-key.pem" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$2" "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 825 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
issue broker "DNS:kafka1,DNS:kafka2,DNS:kafka3" serverAuth,clientAuth
issue client "DNS:nebula" clientAuth
# Kafka's PEM keystore: the key (PKCS#8) then the certificate.
openssl pkcs8 -topk8 -nocrypt -in broker-key.pem > broker-keystore.pem
cat broker.pem >> broker-keystore.pem
chmod 0644 ./*.pem # read by the containers' non-root users; keep the directory private
echo "written: $(pwd)"
