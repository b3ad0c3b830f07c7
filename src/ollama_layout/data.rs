//! Where a translated tensor's bytes come from: copied from the source file as they are, or
//! computed from source tensors (the vision towers' repacking in Ollama's clip handlers).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// ggml type ids this module reads.
pub const F32: u32 = 0;
pub const F16: u32 = 1;
const Q8_0: u32 = 8;

/// A region of the source file holding one tensor: where, its ggml type, its element count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub offset: u64,
    pub kind: u32,
    pub elements: u64,
}

/// The bytes of one tensor of the translated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// The source tensor's bytes, unchanged.
    Copy { offset: u64 },
    /// The source tensor's values (F16, F32 or Q8_0) as F32.
    ToF32(Region),
    /// Several source tensors' values as F32, one after the other (a Q/K/V merge).
    ConcatF32(Vec<Region>),
    /// Whole rows of `row_bytes` taken from the source tensor in `order` (row `i` of the
    /// result is source row `order[i]`).
    Rows {
        offset: u64,
        row_bytes: u64,
        order: Vec<u64>,
    },
    /// One temporal slice of a packed Conv3D patch embedding, F16 `[w, h, frames, cout*cin]`
    /// (the packed index `c_out*cin + c_in`), as the F32 Conv2D `[w, h, cin, cout]` llama.cpp
    /// reads.
    PatchSlice {
        offset: u64,
        plane: u64,
        cin: u64,
        cout: u64,
        frames: u64,
        slice: u64,
    },
    /// All zeros.
    Zeros,
}

impl Data {
    /// Writes the `size` bytes of this tensor to `out`, reading what it needs from `source`.
    pub fn write(&self, source: &mut File, out: &mut impl Write, size: u64) -> io::Result<()> {
        match self {
            Data::Copy { offset } => {
                source.seek(SeekFrom::Start(*offset))?;
                io::copy(&mut source.take(size), out).and_then(|copied| {
                    if copied == size {
                        Ok(())
                    } else {
                        Err(io::ErrorKind::UnexpectedEof.into())
                    }
                })
            }
            Data::ToF32(region) => write_f32(out, &read_f32(source, region)?),
            Data::ConcatF32(regions) => {
                for region in regions {
                    write_f32(out, &read_f32(source, region)?)?;
                }
                Ok(())
            }
            Data::Rows {
                offset,
                row_bytes,
                order,
            } => {
                let bytes = read_at(source, *offset, order.len() as u64 * row_bytes)?;
                let row = to_usize(*row_bytes)?;
                for &index in order {
                    let start = to_usize(index)? * row;
                    out.write_all(&bytes[start..start + row])?;
                }
                Ok(())
            }
            Data::PatchSlice {
                offset,
                plane,
                cin,
                cout,
                frames,
                slice,
            } => {
                let region = Region {
                    offset: *offset,
                    kind: F16,
                    elements: plane * frames * cin * cout,
                };
                let values = read_f32(source, &region)?;
                let (plane, cin, cout, frames, slice) = (
                    to_usize(*plane)?,
                    to_usize(*cin)?,
                    to_usize(*cout)?,
                    to_usize(*frames)?,
                    to_usize(*slice)?,
                );
                let mut result = Vec::with_capacity(plane * cin * cout);
                for c_out in 0..cout {
                    for c_in in 0..cin {
                        let packed = c_out * cin + c_in;
                        let start = plane * (slice + frames * packed);
                        result.extend_from_slice(&values[start..start + plane]);
                    }
                }
                write_f32(out, &result)
            }
            Data::Zeros => crate::gguf::write_zeros(out, size),
        }
    }
}

fn to_usize(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(io::Error::other)
}

fn read_at(source: &mut File, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    source.seek(SeekFrom::Start(offset))?;
    let mut bytes = vec![0u8; to_usize(len)?];
    source.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// The values of a source tensor as F32.
fn read_f32(source: &mut File, region: &Region) -> io::Result<Vec<f32>> {
    let n = to_usize(region.elements)?;
    let bytes_of = |per: u64| region.elements * per;
    match region.kind {
        F32 => Ok(read_at(source, region.offset, bytes_of(4))?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()),
        F16 => Ok(read_at(source, region.offset, bytes_of(2))?
            .chunks_exact(2)
            .map(|b| half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
            .collect()),
        Q8_0 if n % 32 == 0 => {
            // Blocks of an F16 scale and 32 signed bytes.
            let bytes = read_at(source, region.offset, region.elements / 32 * 34)?;
            let mut values = Vec::with_capacity(n);
            for block in bytes.chunks_exact(34) {
                let scale = half::f16::from_bits(u16::from_le_bytes([block[0], block[1]])).to_f32();
                values.extend(block[2..].iter().map(|&q| f32::from(q as i8) * scale));
            }
            Ok(values)
        }
        other => Err(io::Error::other(format!(
            "tensor type {other} cannot be converted to F32 here"
        ))),
    }
}

fn write_f32(out: &mut impl Write, values: &[f32]) -> io::Result<()> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    out.write_all(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(bytes: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    fn output(data: &Data, source: &[u8], size: u64) -> Vec<u8> {
        let mut out = Vec::new();
        data.write(&mut file_with(source), &mut out, size).unwrap();
        out
    }

    fn floats(bytes: &[u8]) -> Vec<f32> {
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    fn halves(values: &[f32]) -> Vec<u8> {
        values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_bits().to_le_bytes())
            .collect()
    }

    #[test]
    fn f16_and_q8_0_become_f32_and_concatenate() {
        let mut source = halves(&[1.0, -2.5]);
        // One Q8_0 block: scale 0.5, values 0..32.
        source.extend_from_slice(&half::f16::from_f32(0.5).to_bits().to_le_bytes());
        source.extend((0..32u8).map(|q| q as i8 as u8));
        let regions = vec![
            Region {
                offset: 0,
                kind: F16,
                elements: 2,
            },
            Region {
                offset: 4,
                kind: Q8_0,
                elements: 32,
            },
        ];
        let out = floats(&output(&Data::ConcatF32(regions), &source, 34 * 4));
        assert_eq!(&out[..3], &[1.0, -2.5, 0.0]);
        assert_eq!(out[33], 15.5);
    }

    #[test]
    fn rows_are_reordered_whole() {
        let data = Data::Rows {
            offset: 1,
            row_bytes: 2,
            order: vec![2, 0, 1],
        };
        assert_eq!(output(&data, &[9, 1, 1, 2, 2, 3, 3], 6), [3, 3, 1, 1, 2, 2]);
    }

    #[test]
    fn a_patch_slice_unpacks_channels_of_one_frame() {
        // plane 1, cin 2, cout 1, frames 2: packed index c_in, value = 10*packed + frame.
        let source = halves(&[0.0, 1.0, 10.0, 11.0]);
        let slice = |slice| Data::PatchSlice {
            offset: 0,
            plane: 1,
            cin: 2,
            cout: 1,
            frames: 2,
            slice,
        };
        assert_eq!(floats(&output(&slice(0), &source, 8)), [0.0, 10.0]);
        assert_eq!(floats(&output(&slice(1), &source, 8)), [1.0, 11.0]);
    }
}
