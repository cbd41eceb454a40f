// An interface trait, two implementing types, and a target that hands out
// `Stub<dyn Interface>`.
use capwire::TypedStub;
use capwire::{RpcError, Stub, rpc_target};

#[rpc_target]
pub trait Shape {
    /// The area.
    fn area(&self) -> f64;

    /// The name, as a property.
    #[rpc(getter)]
    fn name(&self) -> String;

    /// Renamed on the wire, with a default body.
    #[rpc(name = "describe")]
    fn description(&self) -> String {
        format!("a shape of area {}", self.area())
    }

    /// An async method.
    async fn scaled_area(&self, by: f64) -> Result<f64, RpcError>;
}

pub struct Square {
    side: f64,
}

#[rpc_target]
impl Shape for Square {
    fn area(&self) -> f64 {
        self.side * self.side
    }

    fn name(&self) -> String {
        "square".to_owned()
    }

    async fn scaled_area(&self, by: f64) -> Result<f64, RpcError> {
        Ok(self.area() * by)
    }
}

pub struct Circle {
    r: f64,
}

#[rpc_target]
impl Shape for Circle {
    fn area(&self) -> f64 {
        3.14 * self.r * self.r
    }

    fn name(&self) -> String {
        "circle".to_owned()
    }

    fn description(&self) -> String {
        "round".to_owned()
    }

    async fn scaled_area(&self, by: f64) -> Result<f64, RpcError> {
        Ok(self.area() * by)
    }
}

pub struct Drawing;

#[rpc_target]
impl Drawing {
    pub fn square(&self, side: f64) -> Square {
        Square { side }
    }

    pub fn measure(&self, shape: Stub<dyn Shape>) -> Stub<dyn Shape> {
        shape
    }
}

async fn client_side(drawing: Stub<Drawing>, shape: Stub<dyn Shape>) -> Result<(), RpcError> {
    let area: f64 = shape.area().await?;
    let name: String = shape.name().await?;
    let text: String = shape.description().await?;
    let scaled: f64 = shape.scaled_area(2.0).await?;
    let square: Stub<Square> = drawing.square(2.0).await?;
    let square_area: f64 = square.area().await?;
    let back: Stub<dyn Shape> = drawing.measure(shape).await?;
    let _ = (area, name, text, scaled, square_area, back);
    Ok(())
}

fn main() {
    let _square: Stub<Square> = TypedStub::local(Square { side: 1.0 });
    let _circle: Stub<Circle> = TypedStub::local(Circle { r: 1.0 });
    let _ = client_side;
}
