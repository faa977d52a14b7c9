#!/usr/bin/env bash
# A throwaway local PKI for `make run` and the tests, with the openssl
# command line: one CA (EC P-256) and, signed by it,
#   server.pem   every listener of both gateways: localhost, 127.0.0.1,
#                127.0.0.2 and the sample content hosts
#   ucdn.pem     the uCDN's client certificate (SAN DNS ucdn.cdni.test)
#   dcdn.pem     the dCDN's client certificate (SAN DNS dcdn.cdni.test)
#   other.pem    a third CDN's, from the same CA (SAN DNS other.cdni.test)
#   expired.pem  the dCDN's name, valid only in 2020
#   soon.pem     a server certificate that expires in 5 days
#   rsa.pem      an RSA-2048 server certificate (rsa.cdni.test)
#   rogue-ca.pem, rogue.pem  a second CA and a server certificate of it
# each with its key in <name>-key.pem. Never for production use.
#   scripts/pki.sh DIR [extra server SAN entries, e.g. DNS:video.example.com]
set -euo pipefail
d=$1
shift
mkdir -p "$d"
cd "$d"
[ -s ca.pem ] && [ -s server.pem ] && exit 0 # made before
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ec ca-key.pem
openssl req -x509 -new -key ca-key.pem -out ca.pem -days 3650 -subj "/CN=cdni-gateway local test CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
ec rogue-ca-key.pem
openssl req -x509 -new -key rogue-ca-key.pem -out rogue-ca.pem -days 3650 -subj "/CN=not our CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
# leaf NAME SUBJECT SAN EKU [CA]
leaf() {
  local ca=${5:-ca}
  ec "$1-key.pem"
  openssl req -new -key "$1-key.pem" -subj "$2" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n' \
    "$3" "$4" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$ca.pem" -CAkey "$ca-key.pem" -CAcreateserial -days "${DAYS:-825}" \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
extra=""
for s in "$@"; do extra="$extra,$s"; done
leaf server "/CN=cdni-gateway" "DNS:localhost,IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3$extra" serverAuth
leaf ucdn "/O=cdni-gateway test/CN=ucdn" "DNS:ucdn.cdni.test" clientAuth,serverAuth
leaf dcdn "/O=cdni-gateway test/CN=dcdn" "DNS:dcdn.cdni.test" clientAuth,serverAuth
leaf other "/O=cdni-gateway test/CN=other" "DNS:other.cdni.test" clientAuth,serverAuth
# an RSA one too (listeners take either)
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa-key.pem 2>/dev/null
openssl req -new -key rsa-key.pem -subj "/CN=rsa" -out rsa.csr 2>/dev/null
printf 'subjectAltName=DNS:rsa.cdni.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >rsa.ext
openssl x509 -req -in rsa.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 825 -extfile rsa.ext -out rsa.pem 2>/dev/null
rm -f rsa.csr rsa.ext
DAYS=5 leaf soon "/CN=cdni-gateway" "DNS:localhost,IP:127.0.0.1$extra" serverAuth
leaf rogue "/CN=rogue" "DNS:localhost,IP:127.0.0.1" serverAuth,clientAuth rogue-ca
# expired: `openssl ca` is what sets dates in the past
mkdir -p ca-db
: >ca-db/index.txt
cat >ca-db/ca.cnf <<EOF
[ca]
default_ca = test
[test]
database = ca-db/index.txt
new_certs_dir = ca-db
certificate = ca.pem
private_key = ca-key.pem
serial = ca-db/serial
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
[ext]
subjectAltName = DNS:dcdn.cdni.test
extendedKeyUsage = clientAuth
basicConstraints = CA:FALSE
EOF
echo 1000 >ca-db/serial
ec expired-key.pem
openssl req -new -key expired-key.pem -subj "/CN=dcdn" -out expired.csr 2>/dev/null
openssl ca -batch -config ca-db/ca.cnf -extensions ext -startdate 20200101000000Z -enddate 20200201000000Z \
  -in expired.csr -out expired.pem -notext >/dev/null 2>&1
rm -f expired.csr
# the SPKI pin of a certificate, as curl and our configs write it
for c in ucdn dcdn other server; do
  printf 'sha256//%s\n' "$(openssl x509 -in "$c.pem" -pubkey -noout | openssl pkey -pubin -outform DER |
    openssl dgst -sha256 -binary | openssl base64 -A)" >"$c.spki"
done
