//! The JSON Web Signatures ACME requests are wrapped in (RFC 8555 6.2,
//! RFC 7515): ES256 over the account key, identified by its JWK until
//! the account exists and by its URL (`kid`) after; and the key's
//! thumbprint (RFC 7638) that HTTP-01 key authorizations end with.

use base64ct::{Base64UrlUnpadded, Encoding};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
};

use crate::proto::json::quote;

/// An account key: P-256, kept as PKCS#8.
pub struct AccountKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

/// How a request names its key.
pub enum Signer<'a> {
    /// The key itself (newAccount).
    Jwk,
    /// The account's URL.
    Kid(&'a str),
}

impl AccountKey {
    /// A new key, as PKCS#8 to keep.
    pub fn generate() -> Result<Vec<u8>, &'static str> {
        let rng = SystemRandom::new();
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| "could not make an account key")
    }

    /// A key read back from its PKCS#8.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<AccountKey, &'static str> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
            &rng,
        )
        .map_err(|_| "the account key is not a P-256 PKCS#8 key")?;
        Ok(AccountKey { pair, rng })
    }

    /// The public key as a JWK, members in RFC 7638's order.
    pub fn jwk(&self) -> String {
        let point = self.pair.public_key().as_ref();
        // Uncompressed: 0x04, X, Y.
        let (x, y) = (&point[1..33], &point[33..65]);
        format!(
            "{{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"{}\",\"y\":\"{}\"}}",
            Base64UrlUnpadded::encode_string(x),
            Base64UrlUnpadded::encode_string(y)
        )
    }

    /// The JWK thumbprint (RFC 7638), base64url.
    pub fn thumbprint(&self) -> String {
        let digest =
            ring::digest::digest(&ring::digest::SHA256, self.jwk().as_bytes());
        Base64UrlUnpadded::encode_string(digest.as_ref())
    }

    /// HTTP-01's key authorization for `token` (RFC 8555 8.1).
    pub fn key_authorization(&self, token: &str) -> String {
        format!("{token}.{}", self.thumbprint())
    }

    /// A request's body: `payload` (None: POST-as-GET's empty payload)
    /// for `url`, with `nonce`.
    pub fn sign(
        &self,
        signer: Signer<'_>,
        nonce: &str,
        url: &str,
        payload: Option<&str>,
    ) -> Result<String, &'static str> {
        let key = match signer {
            Signer::Jwk => format!("\"jwk\":{}", self.jwk()),
            Signer::Kid(kid) => format!("\"kid\":{}", quote(kid)),
        };
        let protected = format!(
            "{{\"alg\":\"ES256\",{key},\"nonce\":{},\"url\":{}}}",
            quote(nonce),
            quote(url)
        );
        let protected = Base64UrlUnpadded::encode_string(protected.as_bytes());
        let payload = payload.map_or(String::new(), |p| {
            Base64UrlUnpadded::encode_string(p.as_bytes())
        });
        let input = format!("{protected}.{payload}");
        let signature = self
            .pair
            .sign(&self.rng, input.as_bytes())
            .map_err(|_| "signing failed")?;
        Ok(format!(
            "{{\"protected\":\"{protected}\",\"payload\":\"{payload}\",\"signature\":\"{}\"}}",
            Base64UrlUnpadded::encode_string(signature.as_ref())
        ))
    }
}

#[cfg(test)]
mod tests {
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

    use super::*;
    use crate::proto::json;

    #[test]
    fn signed_requests_verify() {
        let pkcs8 = AccountKey::generate().unwrap();
        let key = AccountKey::from_pkcs8(&pkcs8).unwrap();
        let body = key
            .sign(
                Signer::Jwk,
                "n0nce",
                "https://ca/new-acct",
                Some("{\"a\":1}"),
            )
            .unwrap();
        let v = json::parse(body.as_bytes()).unwrap();
        let protected = v.get("protected").and_then(json::Value::str).unwrap();
        let payload = v.get("payload").and_then(json::Value::str).unwrap();
        let signature = Base64UrlUnpadded::decode_vec(
            v.get("signature").and_then(json::Value::str).unwrap(),
        )
        .unwrap();
        let header =
            json::parse(&Base64UrlUnpadded::decode_vec(protected).unwrap())
                .unwrap();
        assert_eq!(
            header.get("alg").and_then(json::Value::str),
            Some("ES256")
        );
        assert_eq!(
            header.get("url").and_then(json::Value::str),
            Some("https://ca/new-acct")
        );
        assert!(header.get("jwk").is_some());
        let public = UnparsedPublicKey::new(
            &ECDSA_P256_SHA256_FIXED,
            key.pair.public_key().as_ref().to_vec(),
        );
        public
            .verify(format!("{protected}.{payload}").as_bytes(), &signature)
            .unwrap();
        // POST-as-GET: an empty payload; an account's URL as kid.
        let get = key
            .sign(
                Signer::Kid("https://ca/acct/1"),
                "n",
                "https://ca/order/1",
                None,
            )
            .unwrap();
        let v = json::parse(get.as_bytes()).unwrap();
        assert_eq!(v.get("payload").and_then(json::Value::str), Some(""));
        // The thumbprint is 32 octets, base64url.
        assert_eq!(key.thumbprint().len(), 43);
        assert!(key.key_authorization("tok").starts_with("tok."));
    }
}
