//! Image uploads: the four types Medium takes, a size cap, and the multipart
//! body written here rather than by reqwest, so that it is plain bytes that
//! [`BearerAuth`](crate::BearerAuth) can send again after a refresh (reqwest's
//! multipart form is a stream, sent once).

use std::fmt::Write as _;

use medium_oauth2_api::resource::operations::upload_image;

use crate::Error;

/// The largest image [`MediumApi::upload_image`](super::MediumApi::upload_image)
/// sends, in bytes. Medium documents no limit; 5 MiB is as large as a photo
/// in a post needs to be, and keeps a whole upload in memory without worry.
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;

/// The image types Medium accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ImageType {
    /// `image/jpeg`
    Jpeg,
    /// `image/png`
    Png,
    /// `image/gif`
    Gif,
    /// `image/tiff`
    Tiff,
}

impl ImageType {
    /// Every type, in the spec's order.
    pub const ALL: [ImageType; 4] = [Self::Jpeg, Self::Png, Self::Gif, Self::Tiff];

    /// The media type, as sent in the part's `Content-Type`.
    pub fn mime(self) -> &'static str {
        let types = upload_image::part_content_types::IMAGE;
        // The spec lists the four in this order; a test holds them together.
        types[self as usize]
    }

    /// The file name extension, for the part's filename.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::Tiff => "tiff",
        }
    }
}

impl std::fmt::Display for ImageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.mime())
    }
}

/// A media type that is not one of the four Medium accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Medium accepts only image/jpeg, image/png, image/gif and image/tiff, not {0:?}")]
pub struct UnsupportedImageType(pub String);

impl std::str::FromStr for ImageType {
    type Err = UnsupportedImageType;

    /// Reads a media type, ignoring case and parameters (`image/PNG;
    /// q=1` is `Png`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let essence = text.split(';').next().unwrap_or_default().trim();
        Self::ALL
            .into_iter()
            .find(|t| t.mime().eq_ignore_ascii_case(essence))
            .ok_or_else(|| UnsupportedImageType(text.chars().take(64).collect()))
    }
}

/// The multipart body of one image and its `Content-Type` header.
pub(crate) fn multipart_body(
    bytes: &[u8],
    image_type: ImageType,
) -> Result<(String, Vec<u8>), Error> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(Error::ImageTooLarge {
            bytes: bytes.len(),
            limit: MAX_IMAGE_BYTES,
        });
    }
    let boundary = boundary(bytes)?;
    let mut head = String::new();
    // Infallible: writing to a String.
    let _ = write!(
        head,
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"image.{ext}\"\r\nContent-Type: {mime}\r\n\r\n",
        name = upload_image::part::IMAGE,
        ext = image_type.extension(),
        mime = image_type.mime(),
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let mut body = Vec::with_capacity(head.len() + bytes.len() + tail.len());
    body.extend_from_slice(head.as_bytes());
    body.extend_from_slice(bytes);
    body.extend_from_slice(tail.as_bytes());
    Ok((
        format!("{}; boundary={boundary}", upload_image::CONTENT_TYPE),
        body,
    ))
}

/// A random boundary that does not occur in `bytes`. 128 random bits make a
/// clash practically impossible; it is checked all the same, because a
/// clash would cut the image short without any error.
fn boundary(bytes: &[u8]) -> Result<String, Error> {
    loop {
        let mut random = [0u8; 16];
        getrandom::getrandom(&mut random).map_err(|e| Error::Randomness(e.to_string()))?;
        let mut boundary = String::from("medium-oauth-");
        for byte in random {
            let _ = write!(boundary, "{byte:02x}");
        }
        let needle = boundary.as_bytes();
        if !bytes.windows(needle.len()).any(|w| w == needle) {
            return Ok(boundary);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_types_are_the_specs_four_in_order() {
        let mimes: Vec<&str> = ImageType::ALL.iter().map(|t| t.mime()).collect();
        assert_eq!(mimes, upload_image::part_content_types::IMAGE);
        for t in ImageType::ALL {
            assert_eq!(t.mime().parse::<ImageType>(), Ok(t));
            assert_eq!(t.to_string(), t.mime());
            assert!(t.mime().ends_with(t.extension()) || t == ImageType::Jpeg);
        }
        assert_eq!("IMAGE/PNG; q=1".parse::<ImageType>(), Ok(ImageType::Png));
        assert!("image/webp".parse::<ImageType>().is_err());
        assert!("".parse::<ImageType>().is_err());
    }

    #[test]
    fn the_body_holds_one_image_part_between_its_boundaries() {
        let (content_type, body) = multipart_body(b"\x89PNG data", ImageType::Png).unwrap();
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(&format!("--{boundary}\r\n")), "{text}");
        assert!(text.contains("name=\"image\"; filename=\"image.png\"\r\nContent-Type: image/png\r\n\r\n\u{FFFD}PNG data\r\n"), "{text}");
        assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")), "{text}");
    }

    #[test]
    fn an_image_over_the_cap_is_refused_and_one_at_it_is_not() {
        let at_cap = vec![0u8; MAX_IMAGE_BYTES];
        assert!(multipart_body(&at_cap, ImageType::Gif).is_ok());
        let over = vec![0u8; MAX_IMAGE_BYTES + 1];
        let err = multipart_body(&over, ImageType::Gif).unwrap_err();
        assert!(
            matches!(err, Error::ImageTooLarge { bytes, limit } if bytes == MAX_IMAGE_BYTES + 1 && limit == MAX_IMAGE_BYTES),
            "{err:?}"
        );
    }

    #[test]
    fn two_boundaries_differ() {
        assert_ne!(boundary(b"").unwrap(), boundary(b"").unwrap());
    }
}
